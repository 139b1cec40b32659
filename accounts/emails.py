"""One helper for every email: templates/emails/<name>-{subject,body-text,body-html}.html."""

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string


def absolute(path: str) -> str:
    return path if path.startswith("http") else f"{settings.SITE_URL}{path}"


def send_email(
    name: str,
    *,
    to: str | list[str],
    context: dict,
    attachments: list[tuple[str, bytes, str]] = (),
    headers: dict | None = None,
) -> None:
    context = {**context, "site_url": settings.SITE_URL}
    if "path" in context:
        context["link"] = absolute(context["path"])
    subject = " ".join(render_to_string(f"emails/{name}-subject.html", context).split())
    text = render_to_string(f"emails/{name}-body-text.html", context)
    html = render_to_string(f"emails/{name}-body-html.html", context)
    message = EmailMultiAlternatives(
        subject,
        text,
        to=[to] if isinstance(to, str) else to,
        headers=headers or {},
    )
    message.attach_alternative(html, "text/html")
    for filename, content, mimetype in attachments:
        message.attach(filename, content, mimetype)
    message.send()
