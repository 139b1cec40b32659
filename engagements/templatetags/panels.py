"""`{% panels "page" subject %}`: what the apps above engagements show on one of its pages (engagements/panels.py)."""

from django import template

from engagements import panels as page_panels

register = template.Library()


@register.simple_tag(takes_context=True)
def panels(context, page, subject):
    return page_panels.render(page, context.get("request"), subject)
