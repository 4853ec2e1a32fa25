"""UCUM canonical units for quantity search (http://hl7.org/fhir/R4/search.html#quantity:
"the server SHOULD ... search using canonical units").

A UCUM unit code (system http://unitsofmeasure.org) is turned into its canonical form: the
base units it reduces to (`unit`, e.g. "kilogram.meter-3" for mg/dL and g/L alike) and the affine
map value -> canonical value (`scale`, `offset`; the offset is not 0 only for Cel and [degF]).
Parsing and reduction are done by ucumvert (the UCUM grammar, on pint's unit registry; MIT,
pure Python: see setup.cfg), once per distinct code. A code is not comparable (None) when UCUM
does not parse it, when pint lacks one of its atoms ([pH]), when it holds an arbitrary unit
([IU], [arb'U]: UCUM says these compare with nothing but themselves; pint would call them 1),
or when the map is not affine (the logarithmic dB, B[...], Np; Cel inside a product). Such a
quantity is searched by its exact unit code instead.

A code is data a client sends (a search value, a stored Quantity), so its cost is bounded: codes
over MAX_CODE characters are not parsed (nor remembered), an exponent past MAX_EXPONENT is refused
before pint computes 10**N (10*99999999 would take minutes under the conversion lock), and a factor
that overflows a float makes the code not comparable rather than an error.

Values are converted in decimal arithmetic from the shortest text of the float (`repr`), so that
an index row's bound and a query's bound that are the same decimal in the same canonical unit
become the same float: 5.4 mg and 0.0054 g meet exactly (R4 #quantity's precision example).
"""
from __future__ import annotations

import functools
import math
import threading
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from decimal import Decimal, localcontext
from importlib import resources

UCUM = "http://unitsofmeasure.org"
_FAR = 10 ** 6
MAX_CODE = 100          # characters of a code that is parsed
MAX_EXPONENT = 99       # |exponent| of one atom (10*23, m3, s-2); larger ones are not comparable
SIGNIFICANT = 15        # a pint factor is a float: 0.009999999999999998 is 0.01 at 15 digits


@dataclass(frozen=True)
class Canonical:
    unit: str           # base units with exponents, "." between them ("1" when dimensionless)
    scale: Decimal
    offset: Decimal

    def value(self, x: float) -> float:
        """x (a bound of an index row or a query, in the original unit) in the canonical unit;
        the open ends -inf/+inf stay open."""
        if not math.isfinite(x):
            return x
        with localcontext() as ctx:
            ctx.prec = 34
            return float(Decimal(repr(x)) * self.scale + self.offset)


_lock, _convert_lock = threading.Lock(), threading.Lock()
_state: dict = {}


def _tools():
    """(parse, arbitrary atoms): built on first use (pint's registry takes ~0.4 s to load)."""
    with _lock:
        if not _state:
            import pint
            from ucumvert import UcumToPintTransformer, get_ucum_parser, parse_ucum
            registry = pint.UnitRegistry()
            registry.load_definitions(str(resources.files("ucumvert") / "pint_ucum_defs.txt"))
            parser, transform = get_ucum_parser(), UcumToPintTransformer(ureg=registry).transform
            _state["parse"] = lambda code: parse_ucum(code, parser)
            _state["transform"] = transform
            _state["quantity"] = registry.Quantity
            _state["arbitrary"] = _arbitrary_atoms()
    return _state


def _arbitrary_atoms() -> frozenset[str]:
    """The atoms ucum-essence.xml (shipped with ucumvert) marks isArbitrary="yes"."""
    with (resources.files("ucumvert") / "vendor" / "ucum-essence.xml").open("rb") as f:
        root = ET.parse(f).getroot()
    return frozenset(u.get("Code") for u in root.iter() if u.tag.endswith("unit") and u.get("isArbitrary") == "yes")


def canonical(code: str) -> Canonical | None:
    """The canonical form of a UCUM code, or None when it cannot be compared (see above)."""
    if not isinstance(code, str) or not code or len(code) > MAX_CODE:
        return None
    return _canonical(code)


@functools.lru_cache(maxsize=4096)
def _canonical(code: str) -> Canonical | None:
    tools = _tools()
    try:
        with _convert_lock:     # pint's registry caches as it converts: one code at a time (misses only)
            tree = tools["parse"](code)
            for tok in tree.scan_values(lambda v: True):
                if str(tok) in tools["arbitrary"] or \
                        (getattr(tok, "type", None) == "EXPONENT" and abs(int(tok)) > MAX_EXPONENT):
                    return None
            q = tools["transform"](tree)
            if not hasattr(q, "units"):       # a bare number ("10*3") is a dimensionless quantity
                q = tools["quantity"](float(q), "")
            points = [tools["quantity"](x * q.magnitude, q.units).to_base_units() for x in (0, 1, _FAR)]
            f0, f1, far = (float(p.magnitude) for p in points)
    except Exception:       # noqa: BLE001 - UCUM syntax, atoms pint lacks, offset-unit arithmetic, overflow
        return None
    scale = (far - f0) / _FAR      # taken far from 0: [degF]'s 5/9 to 16 digits, not 14
    if not all(math.isfinite(v) for v in (f0, f1, far, scale)) or scale <= 0 \
            or not math.isclose(f1 - f0, scale, rel_tol=1e-9):
        return None         # not affine: a logarithmic unit; or beyond a float
    return Canonical(_unit_text(points[1].units), _rounded(scale), _rounded(f0))


canonical.cache_clear, canonical.cache_info = _canonical.cache_clear, _canonical.cache_info


def _rounded(x: float) -> Decimal:
    with localcontext() as ctx:
        ctx.prec = SIGNIFICANT
        return (+Decimal(repr(x))).normalize()


def _unit_text(units) -> str:
    parts = []
    for name, exp in sorted((str(k), float(v)) for k, v in units._units.items()):
        parts.append(name if exp == 1 else f"{name}{int(exp) if exp.is_integer() else exp:g}")
    return ".".join(parts) or "1"
