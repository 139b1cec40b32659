"""Portal sign-off pages: versions awaiting the stakeholder, the sign-off form, signed versions, downloads."""

urlpatterns = []
