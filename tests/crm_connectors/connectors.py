"""The product's connectors pointed at a sandbox, with GTM Ops' rate limits lifted: what the CRM tests read through."""

import uuid

from crm_connectors.http import LocalStore
from crm_connectors.hubspot import HubSpotConnector
from crm_connectors.salesforce import SalesforceConnector

UNLIMITED = {"salesforce": "1000000/1", "hubspot": "1000000/1", "hubspot-search": "1000000/1"}


def connector(sb):
    # module-scoped fixtures cannot use the `settings` fixture: the options say what the settings would
    options = {"store": LocalStore(), "key": uuid.uuid4().hex, "allow_http": True, "rates": UNLIMITED}
    if sb.platform == "salesforce":
        return SalesforceConnector(
            base_url=sb.base_url,
            username=sb.username,
            password=sb.password,
            security_token=sb.security_token,
            **options,
        )
    return HubSpotConnector(base_url=sb.base_url, access_token=sb.access_token, **options)
