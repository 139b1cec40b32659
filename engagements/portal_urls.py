from django.urls import path

from . import urls_portal_signoff
from .views import portal, portal_prefs

app_name = "portal"

urlpatterns = [
    path("", portal.portal_home, name="home"),
    path("login/", portal.portal_login, name="login"),
    path("auth/<str:token>/", portal.portal_redeem, name="redeem"),
    path("logout/", portal.portal_logout, name="logout"),
    path("tasks/<uuid:item_uuid>/done/", portal.task_done, name="task-done"),
    path("unsubscribe/<str:token>/", portal_prefs.unsubscribe, name="unsubscribe"),
]

urlpatterns += urls_portal_signoff.urlpatterns
