from django import forms
from django.contrib.auth.forms import AuthenticationForm, UsernameField
from django.contrib.auth.password_validation import validate_password

from .models import Role
from .throttling import SignInRefused


class OrganizationForm(forms.Form):
    name = forms.CharField(max_length=200, label="Organization name")


class InviteForm(forms.Form):
    email = forms.EmailField(label="Email address")
    role = forms.ChoiceField(choices=Role.choices, initial=Role.CONSULTANT)


class RoleForm(forms.Form):
    role = forms.ChoiceField(choices=Role.choices)


class ActivityFilterForm(forms.Form):
    verb = forms.CharField(required=False, label="Action contains")
    actor = forms.CharField(required=False, label="Who")
    since = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    until = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))

    def filter(self, queryset):
        if not self.is_valid():
            return queryset
        data = self.cleaned_data
        if data["verb"]:
            queryset = queryset.filter(verb__icontains=data["verb"])
        if data["actor"]:
            queryset = queryset.filter(actor_label__icontains=data["actor"])
        if data["since"]:
            queryset = queryset.filter(created_at__date__gte=data["since"])
        if data["until"]:
            queryset = queryset.filter(created_at__date__lte=data["until"])
        return queryset


class SignupForm(forms.Form):
    name = forms.CharField(max_length=150, label="Your name")
    password1 = forms.CharField(label="Password", widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}))
    password2 = forms.CharField(
        label="Password again", widget=forms.PasswordInput(attrs={"autocomplete": "new-password"})
    )

    def clean(self):
        data = super().clean()
        if data.get("password1") and data.get("password1") != data.get("password2"):
            self.add_error("password2", "The two passwords differ.")
        elif data.get("password1"):
            try:
                validate_password(data["password1"])
            except forms.ValidationError as exc:
                self.add_error("password1", exc)
        return data


class EmailAuthenticationForm(AuthenticationForm):
    """Users sign in with their email address, which is also their username."""

    username = UsernameField(label="Email", widget=forms.EmailInput(attrs={"autofocus": True, "autocomplete": "email"}))

    def clean_username(self):
        return self.cleaned_data["username"].strip().lower()

    def clean(self):
        try:
            return super().clean()
        except SignInRefused as exc:  # too many failures: the password was not checked
            raise forms.ValidationError(exc.message, code="sign_in_paused") from None


class OrganizationSettingsForm(forms.ModelForm):
    class Meta:
        from .models import Organization

        model = Organization
        fields = ["name", "logo"]
        help_texts = {"logo": "PNG or JPEG, shown on every deliverable (PDF). At most 1 MB."}

    def clean_logo(self):
        logo = self.cleaned_data.get("logo")
        if logo and getattr(logo, "size", 0) > 1024 * 1024:
            raise forms.ValidationError("The logo is larger than 1 MB.")
        return logo
