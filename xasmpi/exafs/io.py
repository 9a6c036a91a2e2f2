"""Read measured spectra: XDI, plain column files, Athena projects and χ(k) files.

Files are read with larch's readers (``read_xdi``, ``read_ascii``, ``read_athena``); this
module finds the columns by their header names, builds the absorbance and checks the
arrays, so that every malformed file gives one :class:`~xasmpi.errors.InputError` that
names the file and the problem.

Absorbance (``absorbance=``):

``"transmission"``  μ = ln(i0 / itrans)
``"fluorescence"``  μ = ifluor / i0
``"mu"``            a ``mu`` (or ``xmu``) column taken as is
any other string    an expression over column names, e.g. ``"-log(itrans/i0)"``, evaluated
                    with arithmetic operators and a few numpy functions only (no other code).
"""
from __future__ import annotations

import ast
import operator
import re
from dataclasses import dataclass, field
from pathlib import Path as FilePath

import numpy as np

from xasmpi.errors import InputError

#: header aliases (lower case) for each column role; the first match wins
ALIASES: dict[str, tuple[str, ...]] = {
    "energy": ("energy", "energy_ev", "e", "ener", "en", "mono_energy"),
    "i0": ("i0", "io", "imon", "mon", "monitor"),
    "itrans": ("itrans", "it", "i1", "itran", "trans"),
    "ifluor": ("ifluor", "if", "ifl", "fluor", "iff", "fl"),
    "mu": ("mu", "xmu", "mutrans", "mu_trans", "mufluor", "norm"),
    "k": ("k", "wavenumber"),
    "chi": ("chi", "chik"),
}
_FORMATS = ("auto", "xdi", "ascii", "athena", "chi")


@dataclass(frozen=True, eq=False)
class Spectrum:
    """One measured spectrum, μ(E) or already-reduced χ(k).

    Attributes
    ----------
    name : str
        Label (file stem or Athena group name unless given).
    source : str
        File it was read from (``file.prj:group`` for Athena projects).
    kind : str
        ``"mu"`` (``energy``, ``mu`` set) or ``"chi"`` (``k``, ``chi`` set).
    energy, mu : ndarray or None
        Strictly increasing energy (eV) and absorbance (arbitrary units).
    k, chi : ndarray or None
        Photo-electron wavenumber (Å⁻¹) and χ(k) (dimensionless) for ``kind="chi"``.
    element, edge : str or None
        Absorbing element and edge (``"Cd"``, ``"K"``) from the file header or the caller.
    absorbance : str
        How μ was built (``"transmission"``, ..., or the expression); ``""`` for χ(k).
    columns : dict
        The raw columns by their lower-case header names, as read.
    """

    name: str
    source: str
    kind: str
    energy: np.ndarray | None = None
    mu: np.ndarray | None = None
    k: np.ndarray | None = None
    chi: np.ndarray | None = None
    element: str | None = None
    edge: str | None = None
    absorbance: str = ""
    columns: dict = field(default_factory=dict)


def read_spectrum(path: str | FilePath, *, name: str | None = None, fmt: str = "auto",
                  absorbance: str = "transmission", columns: dict[str, str] | None = None,
                  element: str | None = None, edge: str | None = None,
                  athena_group: str | None = None) -> Spectrum:
    """Read one spectrum from an XDI, column, Athena-project or χ(k) file.

    Parameters
    ----------
    path : str or pathlib.Path
        The file.
    name : str, optional
        Label; default the file stem (or the Athena group name).
    fmt : {"auto", "xdi", "ascii", "athena", "chi"}
        File format.  ``"auto"``: ``.prj`` → Athena, ``# XDI`` first line → XDI, otherwise a
        column file with a header; a column file with ``k`` and ``chi`` columns and no energy
        column is read as χ(k).
    absorbance : str
        ``"transmission"`` (ln(i0/itrans)), ``"fluorescence"`` (ifluor/i0), ``"mu"`` (a
        ``mu``/``xmu`` column) or an expression over column names (numpy functions
        ``log, ln, log10, exp, sqrt, abs`` and ``+ - * / **`` only).  Ignored for χ(k) files
        and Athena projects (which store μ(E)).
    columns : dict, optional
        Header names for roles that do not match the built-in aliases, e.g.
        ``{"itrans": "I1_corr"}``; roles are ``energy, i0, itrans, ifluor, mu, k, chi``.
    element, edge : str, optional
        Absorber and edge; override the XDI header (``Element.symbol``, ``Element.edge``).
    athena_group : str, optional
        Group label inside an Athena project; required when the project holds several.

    Returns
    -------
    Spectrum

    Raises
    ------
    InputError
        Missing or empty file, truncated line, NaN, non-monotonic or duplicate energies,
        missing column, unknown format or group, invalid expression.
    """
    path = FilePath(path)
    if fmt not in _FORMATS:
        raise InputError(f"{path}: unknown spectrum format {fmt!r} (use one of {', '.join(_FORMATS)})")
    if not path.is_file():
        raise InputError(f"{path}: spectrum file not found")
    if path.stat().st_size == 0:
        raise InputError(f"{path}: file is empty")
    if fmt == "auto":
        fmt = _guess_format(path)
    if fmt == "athena":
        return _read_athena(path, name=name, group=athena_group, element=element, edge=edge)

    data = _read_columns(path, xdi=(fmt == "xdi"))
    cols = data["columns"]
    element = element or data["element"]
    edge = edge or data["edge"]
    name = name or path.stem
    is_chi = fmt == "chi" or (_find(cols, "energy", columns) is None
                              and _find(cols, "k", columns) is not None
                              and _find(cols, "chi", columns) is not None)
    if is_chi:
        k = _column(path, cols, "k", columns)
        chi = _column(path, cols, "chi", columns)
        _check_abscissa(path, k, "k")
        return Spectrum(name=name, source=str(path), kind="chi", k=k, chi=chi,
                        element=element, edge=edge, columns=cols)
    energy = _column(path, cols, "energy", columns)
    _check_abscissa(path, energy, "energy")
    mu = _absorbance(path, cols, absorbance, columns)
    if not np.all(np.isfinite(mu)):
        i = int(np.flatnonzero(~np.isfinite(mu))[0])
        raise InputError(f"{path}: absorbance {absorbance!r} is not finite at E = {energy[i]:.2f} eV "
                         "(zero or negative intensity?)")
    return Spectrum(name=name, source=str(path), kind="mu", energy=energy, mu=mu,
                    element=element, edge=edge, absorbance=absorbance, columns=cols)


def _guess_format(path: FilePath) -> str:
    if path.suffix.lower() == ".prj":
        return "athena"
    with open(path, "rb") as fh:
        head = fh.read(64).decode("latin-1").lstrip()
    # "# XDI/1.0" and "#XDI/1.1" (no space; some files of the public XAS data library)
    return "xdi" if re.match(r"#\s*XDI\b", head, flags=re.IGNORECASE) else "ascii"


#: characters that start a comment line in column files (larch's convention)
_COMMENT = "#;%!*"
#: fewest data rows accepted in a μ(E) or χ(k) file (below this nothing can be reduced)
MIN_ROWS = 20


def _is_number(tok: str) -> bool:
    try:
        float(tok)
    except ValueError:
        return False
    return True


def scan_rows(path: FilePath) -> tuple[np.ndarray, list[int]]:
    """Our own count of the data rows of a column/XDI file, independent of larch.

    Data rows are the non-empty lines that do not start with a comment character.  Lines
    made only of words before the first numeric row are a column header; after it every
    row must have the same number of numeric, finite values.

    Returns
    -------
    values : ndarray, shape (n_rows, n_columns)
    lines : list of int
        1-based line number of each row.

    Raises
    ------
    InputError
        Naming the line: a non-numeric cell, NaN/inf, a missing (truncated) or extra value.
    """
    rows: list[list[float]] = []
    lines: list[int] = []
    ncol = None
    with open(path, encoding="latin-1") as fh:
        for lineno, raw in enumerate(fh, start=1):
            s = raw.strip()
            if not s or s[0] in _COMMENT:
                continue
            toks = s.replace(",", " ").split()
            numeric = [_is_number(t) for t in toks]
            if ncol is None and not any(numeric):
                continue  # an uncommented column-header line
            if not all(numeric):
                j = numeric.index(False)
                raise InputError(f"{path}: line {lineno}: non-numeric value {toks[j]!r} in column {j + 1} "
                                 f"(a data row; every earlier row would be lost)")
            vals = [float(t) for t in toks]
            if ncol is None:
                ncol = len(vals)
            elif len(vals) < ncol:
                raise InputError(f"{path}: truncated line (line {lineno} has {len(vals)} of {ncol} values)")
            elif len(vals) > ncol:
                raise InputError(f"{path}: line {lineno} has {len(vals)} values, the data rows before it "
                                 f"have {ncol}")
            bad = [j for j, v in enumerate(vals) if not np.isfinite(v)]
            if bad:
                raise InputError(f"{path}: NaN or infinite value {toks[bad[0]]!r} in column {bad[0] + 1} "
                                 f"at line {lineno}")
            rows.append(vals)
            lines.append(lineno)
    if not rows:
        raise InputError(f"{path}: no numeric data rows found")
    return np.asarray(rows, dtype=float), lines


def _read_columns(path: FilePath, *, xdi: bool) -> dict:
    """Columns (lower-case header → array), element and edge.

    The rows are counted and checked by :func:`scan_rows` first (larch's readers take the
    lines before a bad cell as header and would silently drop them); larch supplies the
    column labels and the XDI metadata, and must agree with our count.
    """
    from larch.io import read_ascii, read_xdi

    values, lines = scan_rows(path)
    if values.shape[0] < MIN_ROWS:
        raise InputError(f"{path}: only {values.shape[0]} data rows (at least {MIN_ROWS} are needed)")
    if values.shape[1] < 2:
        raise InputError(f"{path}: only {values.shape[1]} data column(s)")
    try:
        grp = read_xdi(str(path)) if xdi else read_ascii(str(path))
    except Exception as exc:  # larch raises ValueError, AttributeError, ... on garbage
        reason = str(exc).splitlines()[-1] if str(exc).strip() else type(exc).__name__
        raise InputError(f"{path}: cannot read as {'XDI' if xdi else 'a column file'}: {reason}") from None
    arr = getattr(grp, "data", None)
    labels = [str(s).strip().lower() for s in (getattr(grp, "array_labels", None) or [])]
    if arr is None or np.ndim(arr) != 2 or np.size(arr) == 0 or not labels:
        raise InputError(f"{path}: no data columns found")
    arr = np.asarray(arr, dtype=float)
    if arr.shape[1] != values.shape[0] or not np.array_equal(arr[:, -1], values[-1, : arr.shape[0]]):
        raise InputError(f"{path}: the file has {values.shape[0]} data rows (lines {lines[0]}-{lines[-1]}) "
                         f"but larch read {arr.shape[1]}: check the lines around the header")
    if len(labels) != values.shape[1]:
        labels = (labels + [f"col{j + 1}" for j in range(len(labels), values.shape[1])])[: values.shape[1]]
    cols = {lab: values[:, i].copy() for i, lab in enumerate(labels)}
    element = edge = None
    attrs = getattr(grp, "attrs", None) or {}
    if isinstance(attrs, dict) and "element" in attrs:
        element = str(attrs["element"].get("symbol") or "").strip().capitalize() or None
        edge = str(attrs["element"].get("edge") or "").strip().upper() or None
    return {"columns": cols, "element": element, "edge": edge}


def _check_abscissa(path: FilePath, x: np.ndarray, what: str) -> None:
    dx = np.diff(x)
    if np.any(dx == 0):
        i = int(np.flatnonzero(dx == 0)[0])
        raise InputError(f"{path}: duplicate {what} value {x[i]:g} (data rows {i + 1} and {i + 2})")
    if np.any(dx < 0):
        i = int(np.flatnonzero(dx < 0)[0])
        raise InputError(f"{path}: {what} is not increasing ({x[i]:g} then {x[i + 1]:g} at data rows {i + 1}-{i + 2})")


def _find(cols: dict, role: str, user: dict | None) -> str | None:
    """Header name for ``role``: the user's name, else the first alias present (case-insensitive)."""
    if user and role in user:
        want = user[role].strip().lower()
        return want if want in cols else None
    return next((a for a in ALIASES[role] if a in cols), None)


def _column(path: FilePath, cols: dict, role: str, user: dict | None) -> np.ndarray:
    key = _find(cols, role, user)
    if key is None:
        asked = (user or {}).get(role)
        wanted = repr(asked) if asked else "/".join(ALIASES[role][:4])
        raise InputError(f"{path}: missing {role} column ({wanted}); columns are {', '.join(cols)}")
    return cols[key]


def _absorbance(path: FilePath, cols: dict, absorbance: str, user: dict | None) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        if absorbance == "transmission":
            return np.log(_column(path, cols, "i0", user) / _column(path, cols, "itrans", user))
        if absorbance == "fluorescence":
            return _column(path, cols, "ifluor", user) / _column(path, cols, "i0", user)
        if absorbance == "mu":
            return _column(path, cols, "mu", user).copy()
        return safe_eval(absorbance, cols, source=str(path))


_BINOPS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
           ast.Div: operator.truediv, ast.Pow: operator.pow}
_UNARY = {ast.USub: operator.neg, ast.UAdd: operator.pos}
_FUNCS = {"log": np.log, "ln": np.log, "log10": np.log10, "exp": np.exp, "sqrt": np.sqrt,
          "abs": np.abs}


def safe_eval(expr: str, columns: dict[str, np.ndarray], *, source: str = "expression") -> np.ndarray:
    """Evaluate an arithmetic expression over named columns without running arbitrary code.

    Allowed: numbers, column names (case-insensitive), ``+ - * / **``, unary minus and the
    functions ``log`` (= ``ln``), ``log10``, ``exp``, ``sqrt``, ``abs``.

    Raises
    ------
    InputError
        Syntax error, unknown name or function, or any other construct.
    """
    try:
        tree = ast.parse(expr.strip(), mode="eval")
    except SyntaxError:
        raise InputError(f"{source}: invalid absorbance expression {expr!r}") from None

    def ev(node):
        if isinstance(node, ast.Expression):
            return ev(node.body)
        if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)):
            return float(node.value)
        if isinstance(node, ast.Name):
            key = node.id.lower()
            if key not in columns:
                raise InputError(f"{source}: absorbance expression {expr!r} uses unknown column "
                                 f"{node.id!r}; columns are {', '.join(columns)}")
            return np.asarray(columns[key], dtype=float)
        if isinstance(node, ast.BinOp) and type(node.op) in _BINOPS:
            return _BINOPS[type(node.op)](ev(node.left), ev(node.right))
        if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
            return _UNARY[type(node.op)](ev(node.operand))
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                and node.func.id.lower() in _FUNCS and len(node.args) == 1 and not node.keywords):
            return _FUNCS[node.func.id.lower()](ev(node.args[0]))
        raise InputError(f"{source}: absorbance expression {expr!r} may only use column names, numbers, "
                         f"+ - * / ** and {', '.join(_FUNCS)}")

    with np.errstate(divide="ignore", invalid="ignore"):
        out = ev(tree)
    if np.ndim(out) == 0:
        raise InputError(f"{source}: absorbance expression {expr!r} uses no column")
    return out


def _read_athena(path: FilePath, *, name: str | None, group: str | None,
                 element: str | None, edge: str | None) -> Spectrum:
    from larch.io import read_athena

    try:
        prj = read_athena(str(path), do_preedge=False, do_bkg=False, do_fft=False)
    except Exception as exc:
        reason = str(exc).splitlines()[-1] if str(exc).strip() else type(exc).__name__
        raise InputError(f"{path}: cannot read as an Athena project: {reason}") from None
    groups = {label: grp for label, grp in getattr(prj, "groups", {}).items()
              if hasattr(grp, "energy")}
    if not groups:
        raise InputError(f"{path}: Athena project holds no spectra")
    if group is None:
        if len(groups) > 1:
            raise InputError(f"{path}: Athena project holds {len(groups)} groups "
                             f"({', '.join(groups)}); choose one with athena_group")
        group = next(iter(groups))
    if group not in groups:
        raise InputError(f"{path}: no group {group!r} in Athena project (groups: {', '.join(groups)})")
    grp = groups[group]
    energy = np.asarray(grp.energy, dtype=float)
    mu = np.asarray(getattr(grp, "mu", getattr(grp, "xmu", None)), dtype=float)
    source = f"{path}:{group}"
    if energy.size < 2 or mu.shape != energy.shape:
        raise InputError(f"{source}: group has no usable energy/mu arrays")
    if not (np.all(np.isfinite(energy)) and np.all(np.isfinite(mu))):
        raise InputError(f"{source}: NaN values in energy or mu")
    _check_abscissa(FilePath(source), energy, "energy")
    return Spectrum(name=name or group, source=source, kind="mu", energy=energy, mu=mu,
                    element=element or getattr(grp, "atsym", None) or None,
                    edge=edge or getattr(grp, "edge", None) or None, absorbance="mu",
                    columns={"energy": energy, "mu": mu})
