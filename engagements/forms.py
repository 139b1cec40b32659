from django import forms

from .models import ClientAccount, Stakeholder


class ClientAccountForm(forms.ModelForm):
    class Meta:
        model = ClientAccount
        fields = ["name", "website", "notes"]
        widgets = {"notes": forms.Textarea(attrs={"rows": 3})}

    def __init__(self, *args, organization, **kwargs):
        super().__init__(*args, **kwargs)
        self.organization = organization
        self.instance.organization = organization

    def clean_name(self):
        name = self.cleaned_data["name"].strip()
        clash = ClientAccount.objects.for_org(self.organization).filter(name__iexact=name)
        if self.instance.pk:
            clash = clash.exclude(pk=self.instance.pk)
        if clash.exists():
            raise forms.ValidationError("A client with this name already exists.")
        return name


class StakeholderForm(forms.ModelForm):
    class Meta:
        model = Stakeholder
        fields = ["name", "email", "title", "department", "portal_enabled"]

    def __init__(self, *args, client, **kwargs):
        super().__init__(*args, **kwargs)
        self.client = client
        self.instance.client = client

    def clean_email(self):
        email = self.cleaned_data["email"].strip().lower()
        clash = Stakeholder.objects.for_org(self.client.organization).filter(client=self.client, email=email)
        if self.instance.pk:
            clash = clash.exclude(pk=self.instance.pk)
        if clash.exists():
            raise forms.ValidationError("This client already has a stakeholder with this email.")
        return email


class PortalLinkRequestForm(forms.Form):
    email = forms.EmailField(label="Your work email", widget=forms.EmailInput(attrs={"autocomplete": "email"}))
