"""Definition alignment pages: the draft, versions, diffs, sign-off status and deliverables."""

urlpatterns = []
