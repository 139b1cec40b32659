"""The consultancy's OAuth apps, one per CRM platform, in the organization's settings. The client secret is
write-only: the page says "set" and offers to replace it, never shows it."""

from __future__ import annotations

from django import forms

from . import crypto
from .base import CrmConfigurationError
from .http import check_url
from .models import CrmKind, OAuthApp


class OAuthAppForm(forms.ModelForm):
    client_secret = forms.CharField(
        label="Client secret",
        required=False,
        strip=True,
        max_length=500,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
    )

    class Meta:
        model = OAuthApp
        fields = ["client_id", "client_secret", "login_url"]
        labels = {"client_id": "Client ID", "login_url": "Login URL"}

    def __init__(self, *args, platform: str, **kwargs) -> None:
        kwargs["prefix"] = platform  # both platforms' forms are on one page
        super().__init__(*args, **kwargs)
        self.platform = platform
        self.label = CrmKind(platform).label
        if platform != CrmKind.SALESFORCE:
            del self.fields["login_url"]
        if self.instance.has_secret:
            self.fields["client_secret"].widget.attrs["placeholder"] = "•••••••• (set)"
            self.fields["client_secret"].help_text = "Set; type a new one to replace it, or leave blank to keep it."

    def clean_login_url(self) -> str:
        url = self.cleaned_data.get("login_url", "").strip()
        if not url:
            return ""
        try:
            return check_url(url, "Salesforce")
        except CrmConfigurationError as exc:
            raise forms.ValidationError(str(exc)) from None

    def clean(self):
        data = super().clean() or {}
        if not data.get("client_secret") and not self.instance.has_secret:
            self.add_error("client_secret", f"The {self.label} OAuth app's client secret is needed.")
        if data.get("client_secret") and not crypto.can_store_secrets():
            self.add_error(None, crypto.MISSING_KEY)
        return data

    def save(self, commit: bool = True) -> OAuthApp:
        app = super().save(commit=False)
        app.platform = self.platform
        if self.cleaned_data.get("client_secret"):
            app.set_secret(self.cleaned_data["client_secret"])
        if commit:
            app.save()
        return app
