"""A SOQL parser for the query shapes the connectors use, with Salesforce's error texts.

Supported: SELECT fields and COUNT()/COUNT(f)/SUM/AVG/MIN/MAX with aliases, FROM one object, WHERE
with AND/OR/NOT and parentheses over =, !=, <>, <, <=, >, >=, IN, NOT IN, date literals and date
constants (LAST_N_DAYS:n, THIS_MONTH, ...), GROUP BY, ORDER BY, LIMIT, OFFSET. Anything else raises
SoqlError; callers turn it into Salesforce's `[{"message", "errorCode"}]` body.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from .dates import DAY_MS, add_months, from_ms, parse_iso, to_ms

_TOKEN = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<string>'(?:[^'\\]|\\.)*')
  | (?P<datetime>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:?\d{2}))
  | (?P<date>\d{4}-\d{2}-\d{2})
  | (?P<number>-?\d+(?:\.\d+)?)
  | (?P<op><=|>=|!=|<>|=|<|>)
  | (?P<punct>[(),:])
  | (?P<ident>[A-Za-z_][A-Za-z0-9_.]*)
    """,
    re.VERBOSE,
)

KEYWORDS = {
    "SELECT",
    "FROM",
    "WHERE",
    "AND",
    "OR",
    "NOT",
    "IN",
    "GROUP",
    "BY",
    "ORDER",
    "ASC",
    "DESC",
    "LIMIT",
    "OFFSET",
    "NULLS",
    "FIRST",
    "LAST",
    "HAVING",
    "LIKE",
    "INCLUDES",
    "EXCLUDES",
    "WITH",
    "FOR",
    "USING",
    "TYPEOF",
}
AGGREGATES = {"COUNT", "SUM", "AVG", "MIN", "MAX", "COUNT_DISTINCT"}


class SoqlError(Exception):
    def __init__(self, code: str, text: str, query: str = "", column: int | None = None) -> None:
        self.code = code
        self.text = text
        if column is not None:
            message = f"\n{query}\n{' ' * column}^\nERROR at Row:1:Column:{column + 1}\n{text}"
        else:
            message = text
        super().__init__(message)
        self.message = message


@dataclass
class Token:
    kind: str
    text: str
    pos: int

    @property
    def upper(self) -> str:
        return self.text.upper()


@dataclass
class Aggregate:
    func: str
    field: str | None  # None for COUNT()
    alias: str | None
    pos: int


@dataclass
class FieldRef:
    name: str
    pos: int


@dataclass
class Literal:
    kind: str  # string, number, boolean, null, datetime, date, constant
    value: Any
    pos: int


@dataclass
class Comparison:
    field: FieldRef
    op: str  # = != < <= > >= IN NOT IN
    value: Literal | list[Literal]


@dataclass
class BoolOp:
    op: str  # AND / OR / NOT
    items: list[Any]


@dataclass
class OrderItem:
    target: FieldRef | Aggregate
    descending: bool


@dataclass
class SoqlQuery:
    text: str
    fields: list[FieldRef | Aggregate]
    sobject: str
    sobject_pos: int
    where: Any = None
    group_by: list[FieldRef] = field(default_factory=list)
    order_by: list[OrderItem] = field(default_factory=list)
    limit: int | None = None
    offset: int = 0

    @property
    def is_count_only(self) -> bool:
        return (
            len(self.fields) == 1
            and isinstance(self.fields[0], Aggregate)
            and self.fields[0].func == "COUNT"
            and self.fields[0].field is None
        )

    @property
    def is_aggregate(self) -> bool:
        return any(isinstance(f, Aggregate) for f in self.fields) or bool(self.group_by)


def tokenize(text: str) -> list[Token]:
    tokens, pos = [], 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m:
            raise SoqlError(
                "MALFORMED_QUERY", f"unexpected token: '{text[pos : pos + 10].split()[0]}'", text, pos
            )
        kind = m.lastgroup or ""
        if kind != "ws":
            tokens.append(Token(kind, m.group(), pos))
        pos = m.end()
    tokens.append(Token("eof", "<EOF>", len(text)))
    return tokens


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = tokenize(text)
        self.i = 0

    @property
    def tok(self) -> Token:
        return self.tokens[self.i]

    def fail(self, tok: Token | None = None, text: str | None = None) -> SoqlError:
        tok = tok or self.tok
        if text is None:
            text = "unexpected token: <EOF>" if tok.kind == "eof" else f"unexpected token: '{tok.text}'"
        return SoqlError("MALFORMED_QUERY", text, self.text, tok.pos)

    def take(self) -> Token:
        tok = self.tok
        self.i += 1
        return tok

    def keyword(self, *words: str) -> bool:
        if self.tok.kind == "ident" and self.tok.upper in words:
            return True
        return False

    def expect_keyword(self, word: str) -> Token:
        if not self.keyword(word):
            raise self.fail()
        return self.take()

    def expect_punct(self, char: str) -> Token:
        if self.tok.text != char:
            raise self.fail()
        return self.take()

    def ident(self) -> Token:
        if self.tok.kind != "ident" or self.tok.upper in KEYWORDS:
            raise self.fail()
        return self.take()

    def parse(self) -> SoqlQuery:
        self.expect_keyword("SELECT")
        fields = [self.select_item()]
        while self.tok.text == ",":
            self.take()
            fields.append(self.select_item())
        self.expect_keyword("FROM")
        obj = self.ident()
        q = SoqlQuery(self.text, fields, obj.text, obj.pos)
        if self.keyword("USING", "WITH", "TYPEOF"):
            raise self.fail(text=f"sandbox: {self.tok.upper} is not supported")
        if self.keyword("WHERE"):
            self.take()
            q.where = self.expression()
        if self.keyword("GROUP"):
            self.take()
            self.expect_keyword("BY")
            q.group_by = [self.field_ref()]
            while self.tok.text == ",":
                self.take()
                q.group_by.append(self.field_ref())
        if self.keyword("HAVING"):
            raise self.fail(text="sandbox: HAVING is not supported")
        if self.keyword("ORDER"):
            self.take()
            self.expect_keyword("BY")
            q.order_by = [self.order_item()]
            while self.tok.text == ",":
                self.take()
                q.order_by.append(self.order_item())
        if self.keyword("LIMIT"):
            self.take()
            q.limit = self.integer()
        if self.keyword("OFFSET"):
            self.take()
            q.offset = self.integer()
        if self.keyword("FOR"):
            raise self.fail(text="sandbox: FOR VIEW/UPDATE is not supported")
        if self.tok.kind != "eof":
            raise self.fail()
        return q

    def integer(self) -> int:
        tok = self.tok
        if tok.kind != "number" or not tok.text.isdigit():
            raise self.fail()
        self.take()
        return int(tok.text)

    def field_ref(self) -> FieldRef:
        tok = self.ident()
        if self.tok.text == "(":
            raise self.fail(tok, f"sandbox: function {tok.text}() is not supported here")
        return FieldRef(tok.text, tok.pos)

    def select_item(self) -> FieldRef | Aggregate:
        if self.tok.kind == "ident" and self.tokens[self.i + 1].text == "(":
            func = self.take()
            name = func.upper
            if name not in AGGREGATES:
                raise self.fail(func, f"sandbox: function {func.text}() is not supported")
            self.take()
            target = None
            if self.tok.text != ")":
                target = self.ident().text
            self.expect_punct(")")
            if name != "COUNT" and target is None:
                raise self.fail(func, f"Aggregate function {name} requires a field argument")
            alias = None
            if self.tok.kind == "ident" and self.tok.upper not in KEYWORDS:
                alias = self.take().text
            return Aggregate(name, target, alias, func.pos)
        return self.field_ref()

    def order_item(self) -> OrderItem:
        if self.tok.kind == "ident" and self.tokens[self.i + 1].text == "(":
            item: FieldRef | Aggregate = self.select_item()
        else:
            item = self.field_ref()
        desc = False
        if self.keyword("ASC", "DESC"):
            desc = self.take().upper == "DESC"
        if self.keyword("NULLS"):
            self.take()
            if not self.keyword("FIRST", "LAST"):
                raise self.fail()
            self.take()
        return OrderItem(item, desc)

    def expression(self) -> Any:
        items = [self.conjunction()]
        while self.keyword("OR"):
            self.take()
            items.append(self.conjunction())
        return items[0] if len(items) == 1 else BoolOp("OR", items)

    def conjunction(self) -> Any:
        items = [self.unary()]
        while self.keyword("AND"):
            self.take()
            items.append(self.unary())
        return items[0] if len(items) == 1 else BoolOp("AND", items)

    def unary(self) -> Any:
        if self.keyword("NOT"):
            self.take()
            return BoolOp("NOT", [self.unary()])
        if self.tok.text == "(":
            self.take()
            inner = self.expression()
            self.expect_punct(")")
            return inner
        return self.comparison()

    def comparison(self) -> Comparison:
        ref = self.field_ref()
        if self.keyword("NOT"):
            self.take()
            self.expect_keyword("IN")
            return Comparison(ref, "NOT IN", self.value_list())
        if self.keyword("IN"):
            self.take()
            return Comparison(ref, "IN", self.value_list())
        if self.keyword("LIKE", "INCLUDES", "EXCLUDES"):
            raise self.fail(text=f"sandbox: {self.tok.upper} is not supported")
        if self.tok.kind != "op":
            raise self.fail()
        op = self.take().text
        return Comparison(ref, "!=" if op == "<>" else op, self.literal())

    def value_list(self) -> list[Literal]:
        self.expect_punct("(")
        if self.keyword("SELECT"):
            raise self.fail(text="sandbox: semi-joins are not supported")
        values = [self.literal()]
        while self.tok.text == ",":
            self.take()
            values.append(self.literal())
        self.expect_punct(")")
        return values

    def literal(self) -> Literal:
        tok = self.take()
        if tok.kind == "string":
            return Literal("string", re.sub(r"\\(.)", r"\1", tok.text[1:-1]), tok.pos)
        if tok.kind == "number":
            return Literal("number", float(tok.text) if "." in tok.text else int(tok.text), tok.pos)
        if tok.kind == "datetime":
            return Literal("datetime", parse_iso(tok.text), tok.pos)
        if tok.kind == "date":
            return Literal("date", parse_iso(tok.text), tok.pos)
        if tok.kind == "ident":
            word = tok.upper
            if word in ("TRUE", "FALSE"):
                return Literal("boolean", word == "TRUE", tok.pos)
            if word == "NULL":
                return Literal("null", None, tok.pos)
            n = None
            if self.tok.text == ":":
                self.take()
                num = self.tok
                if num.kind != "number" or not num.text.isdigit():
                    raise self.fail(num)
                self.take()
                n = int(num.text)
            return Literal("constant", (word, n), tok.pos)
        raise self.fail(tok)


def parse(text: str) -> SoqlQuery:
    return _Parser(text).parse()


def constant_range(word: str, n: int | None, as_of: int, query: str = "", pos: int = 0) -> tuple[int, int]:
    """[start, end) in epoch ms of a SOQL date constant, in UTC, relative to the org clock."""
    today = from_ms(as_of).date()
    t = to_ms(today)

    def days(a: int, b: int) -> tuple[int, int]:
        return t + a * DAY_MS, t + b * DAY_MS

    def months(a: int, b: int) -> tuple[int, int]:
        first = date(today.year, today.month, 1)
        return to_ms(add_months(first, a)), to_ms(add_months(first, b))

    def quarters(a: int, b: int) -> tuple[int, int]:
        first = date(today.year, (today.month - 1) // 3 * 3 + 1, 1)
        return to_ms(add_months(first, 3 * a)), to_ms(add_months(first, 3 * b))

    def years(a: int, b: int) -> tuple[int, int]:
        return to_ms(date(today.year + a, 1, 1)), to_ms(date(today.year + b, 1, 1))

    week_start = today - timedelta(days=(today.weekday() + 1) % 7)  # en_US weeks start on Sunday
    ws = to_ms(week_start)
    fixed = {
        "TODAY": days(0, 1),
        "YESTERDAY": days(-1, 0),
        "TOMORROW": days(1, 2),
        "THIS_WEEK": (ws, ws + 7 * DAY_MS),
        "LAST_WEEK": (ws - 7 * DAY_MS, ws),
        "NEXT_WEEK": (ws + 7 * DAY_MS, ws + 14 * DAY_MS),
        "THIS_MONTH": months(0, 1),
        "LAST_MONTH": months(-1, 0),
        "NEXT_MONTH": months(1, 2),
        "LAST_90_DAYS": days(-90, 1),
        "NEXT_90_DAYS": days(1, 91),
        "THIS_QUARTER": quarters(0, 1),
        "LAST_QUARTER": quarters(-1, 0),
        "NEXT_QUARTER": quarters(1, 2),
        "THIS_YEAR": years(0, 1),
        "LAST_YEAR": years(-1, 0),
        "NEXT_YEAR": years(1, 2),
    }
    if n is None and word in fixed:
        return fixed[word]
    if n is not None:
        parametric = {
            "LAST_N_DAYS": lambda: days(-n, 1),
            "NEXT_N_DAYS": lambda: days(1, n + 1),
            "N_DAYS_AGO": lambda: days(-n, -n + 1),
            "LAST_N_WEEKS": lambda: (ws - 7 * n * DAY_MS, ws),
            "NEXT_N_WEEKS": lambda: (ws + 7 * DAY_MS, ws + 7 * (n + 1) * DAY_MS),
            "LAST_N_MONTHS": lambda: months(-n, 0),
            "NEXT_N_MONTHS": lambda: months(1, n + 1),
            "N_MONTHS_AGO": lambda: months(-n, -n + 1),
            "LAST_N_QUARTERS": lambda: quarters(-n, 0),
            "NEXT_N_QUARTERS": lambda: quarters(1, n + 1),
            "LAST_N_YEARS": lambda: years(-n, 0),
            "NEXT_N_YEARS": lambda: years(1, n + 1),
        }
        if word in parametric:
            return parametric[word]()
    raise SoqlError("MALFORMED_QUERY", f"unexpected token: '{word}'", query, pos)
