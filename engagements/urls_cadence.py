"""Weekly cadence pages: board, decision log, risks, releases, updates, refinement loop, enablement."""

urlpatterns = []
