"""The catalogue runs and lists its rules in the method's order: each domain module registers its rules when
`crm_connectors.audit.rules` imports it, so an import sorted alphabetically would put company rules first."""

from crm_connectors.audit import rules
from crm_connectors.audit.rules import (
    company_lifecycle,
    customer_lifecycle,
    data_quality,
    drift,
    lead_lifecycle,
    sales_pipelines,
)

# DOMAIN.md section 8's order; each id prefix is one domain module
METHOD_ORDER = ["LC", "PIPE", "CUST", "COMP", "DQ", "DRIFT"]
# DOMAIN.md 8.5 (data quality & segmentation) names its segmentation rule DATA-NO-SEGMENT-FIELDS
PREFIX = {"DATA": "DQ"}


def prefix(rule_id: str) -> str:
    head = rule_id.split("-")[0]
    return PREFIX.get(head, head)


def test_rules_are_registered_domain_by_domain_in_the_methods_order():
    prefixes = [prefix(rule_id) for rule_id in rules.CATALOGUE]
    blocks = [p for i, p in enumerate(prefixes) if i == 0 or p != prefixes[i - 1]]
    assert blocks == METHOD_ORDER, f"the catalogue's rules come in this order of domains: {blocks}"


def test_each_domain_module_holds_the_rules_of_its_prefix():
    modules = {
        "LC": lead_lifecycle,
        "PIPE": sales_pipelines,
        "CUST": customer_lifecycle,
        "COMP": company_lifecycle,
        "DQ": data_quality,
        "DRIFT": drift,
    }
    for head, module in modules.items():
        held = {value.id for value in vars(module).values() if isinstance(value, rules.Rule)}
        assert held == {rule_id for rule_id in rules.CATALOGUE if prefix(rule_id) == head}, module.__name__
