"""The connection form. Secret inputs are write-only: they never render a stored value; blank keeps it."""

from __future__ import annotations

from django import forms

from . import crypto
from .base import AuthMethod, CrmConfigurationError
from .http import check_url
from .models import DEFAULT_BASE_URLS, METHOD_SECRETS, SECRET_FIELDS, CrmAuth, CrmConnection, CrmKind

SECRET_LABELS = {
    "password": "Password",
    "security_token": "Security token",
    "consumer_secret": "Consumer secret",
    "access_token": "Access token",
    "refresh_token": "Refresh token",
}
# what each sign-in method needs (entered now, or stored already)
NEEDS = {
    AuthMethod.SF_PASSWORD: ("username", "password"),
    AuthMethod.SF_CLIENT_CREDENTIALS: ("consumer_key", "consumer_secret"),
    AuthMethod.SF_SESSION: ("access_token",),
    AuthMethod.HS_PRIVATE_APP: ("access_token",),
}


def _write_only(label: str) -> forms.CharField:
    return forms.CharField(
        label=label,
        required=False,
        strip=True,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
    )


class CrmConnectionForm(forms.ModelForm):
    # Shown masked, entered in full; blank keeps the stored value (like the secrets below).
    username = forms.CharField(label="Username", required=False, max_length=200)
    consumer_key = forms.CharField(label="Consumer key", required=False, max_length=300)
    password = _write_only("Password")
    security_token = _write_only("Security token")
    consumer_secret = _write_only("Consumer secret")
    access_token = _write_only("Access token")

    class Meta:
        model = CrmConnection
        fields = ["kind", "auth_method", "base_url"]
        labels = {"kind": "CRM", "auth_method": "Sign in with", "base_url": "Base URL"}

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        # OAuth is granted by the client in the portal, never typed in here
        self.fields["auth_method"].choices = [c for c in CrmAuth.choices if c[0] not in AuthMethod.OAUTH]
        self.fields["base_url"].required = False
        self.fields["base_url"].help_text = (
            "Blank uses https://login.salesforce.com or https://api.hubapi.com. " + self.fields["base_url"].help_text
        )
        for name, value in (
            ("username", self.instance.masked_username),
            ("consumer_key", self.instance.masked_consumer_key),
        ):
            if value:
                self.fields[name].widget.attrs["placeholder"] = f"{value} (stored)"
                self.fields[name].help_text = "Stored; leave blank to keep it."
        for name in SECRET_FIELDS:
            if name in self.fields and self.instance.has_secret(name):  # an OAuth refresh token has no input
                self.fields[name].widget.attrs["placeholder"] = "•••••••• (stored)"
                self.fields[name].help_text = "Stored; leave blank to keep it."

    @property
    def stored_secret_labels(self) -> list[str]:
        """The secrets this connection holds, in words ("Security token", not the field name)."""
        names = self.instance.secret_names or []
        return [SECRET_LABELS.get(name, name.replace("_", " ").capitalize()) for name in names]

    def _stored(self, name: str) -> bool:
        if name in SECRET_FIELDS:
            return self.instance.has_secret(name)
        return bool(getattr(self.instance, name, ""))

    def clean(self):
        data = super().clean()
        kind, method = data.get("kind"), data.get("auth_method")
        if kind and method:
            allowed = AuthMethod.HUBSPOT if kind == CrmKind.HUBSPOT else AuthMethod.SALESFORCE
            if method not in allowed:
                self.add_error("auth_method", f"{CrmAuth(method).label} does not fit {CrmKind(kind).label}.")
            else:
                same_method = self.instance.pk and self.instance.auth_method == method
                for name in NEEDS[method]:
                    if not data.get(name) and not (same_method and self._stored(name)):
                        label = SECRET_LABELS.get(name) or self.fields[name].label
                        self.add_error(name, f"{label} is needed to sign in this way.")
            base_url = data.get("base_url") or DEFAULT_BASE_URLS[kind]
            try:
                data["base_url"] = check_url(base_url, CrmKind(kind).label)
            except CrmConfigurationError as exc:
                self.add_error("base_url", str(exc))
        if any(data.get(n) for n in SECRET_FIELDS) and not crypto.can_store_secrets():
            self.add_error(None, crypto.MISSING_KEY)
        return data

    def secrets(self) -> dict[str, str]:
        method = self.cleaned_data.get("auth_method")
        used = METHOD_SECRETS.get(method, ())
        return {n: self.cleaned_data[n] for n in SECRET_FIELDS if n in used and self.cleaned_data.get(n)}

    def save(self, commit: bool = True) -> CrmConnection:
        connection = super().save(commit=False)
        for name in ("username", "consumer_key"):
            if self.cleaned_data.get(name):
                setattr(connection, name, self.cleaned_data[name])
        if commit:
            connection.save()
        return connection
