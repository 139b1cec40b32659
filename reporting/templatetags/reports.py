from django import template
from django.utils.safestring import mark_safe

register = template.Library()


@register.filter
def get_item(mapping: dict, key):
    return mapping.get(key)


@register.filter
def css_string(value) -> str:
    """Text safe inside a double-quoted CSS string (running headers and footers)."""
    # <style> is raw text: HTML escaping does not apply there, CSS escaping does ("<" cannot close the tag).
    text = str(value).replace("\\", "\\\\").replace('"', '\\"').replace("<", "\\3C ").replace("\n", " ")
    return mark_safe(text)  # noqa: S308 - escaped for a CSS string above
