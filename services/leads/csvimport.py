"""CSV of leads -> (line number, lead input) pairs for the same schema as a single capture.

Headers name lead fields in English or Chinese (leads.csvheaders); `utm_*` columns fill
`utm`, and every other column becomes a custom field keyed by its header. Empty cells count
as missing.

Decoding is deterministic: an explicit charset wins; otherwise a byte-order mark, then strict
UTF-8, then GB18030 (the superset of GBK and GB2312, what Excel in China saves).
"""
import codecs
import contextlib
import csv
import io

from kit.errors import Invalid
from leads.csvheaders import history_field, lead_field

UTM_PREFIX = "utm_"
# UTF-32 first: its little-endian mark begins with UTF-16's.
BOMS = ((codecs.BOM_UTF32_LE, "utf-32-le"), (codecs.BOM_UTF32_BE, "utf-32-be"),
        (codecs.BOM_UTF8, "utf-8"), (codecs.BOM_UTF16_LE, "utf-16-le"),
        (codecs.BOM_UTF16_BE, "utf-16-be"))
FALLBACKS = ("utf-8", "gb18030")
# Files labelled with a subset often hold characters only the superset has.
READ_AS = {"gb2312": "gb18030", "gbk": "gb18030"}
SNIFF_BYTES = 64 * 1024


def decode(raw, charset=None):
    """Returns (text, the encoding it was read with)."""
    if charset:
        encoding = _codec(charset)
        text = _decode_as(raw, encoding)
    else:
        encoding, text = _detect(raw)
    text = text.removeprefix("\ufeff")
    if "\x00" in text:
        raise Invalid("The CSV contains NUL characters: UTF-16 without a byte-order mark? "
                      "Send its charset, e.g. ?charset=utf-16-le.", encoding=encoding)
    return text, encoding


def _codec(charset):
    try:
        name = codecs.lookup(charset.strip()).name
    except LookupError:
        raise Invalid(f"Unknown charset {charset!r}.",
                      errors={"charset": ["Not a known character set."]}) from None
    return READ_AS.get(name, name)


def _decode_as(raw, encoding):
    try:
        return raw.decode(encoding)
    except UnicodeDecodeError as exc:
        raise Invalid(f"The CSV is not valid {encoding}: {exc}.", encoding=encoding) from None


def _detect(raw):
    for bom, encoding in BOMS:
        if raw.startswith(bom):
            return encoding, _decode_as(raw[len(bom):], encoding)
    for encoding in FALLBACKS:
        try:
            return encoding, raw.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise Invalid("The CSV is neither UTF-8 nor GB18030/GBK, and has no byte-order mark. "
                  f"Send its charset (?charset=...){_guess(raw)}.")


def _guess(raw):
    """A hint only: the detector's guess never decides how the file is read."""
    from charset_normalizer import from_bytes

    best = from_bytes(raw[:SNIFF_BYTES]).best()
    return f"; it looks like {best.encoding}" if best is not None else ""


@contextlib.contextmanager
def _field_limit(limit):
    """The csv module's own limit would abort the whole file; fields are bounded per row
    below instead. The limit is process-wide, but nothing yields while a file is parsed."""
    before = csv.field_size_limit(limit)
    try:
        yield
    finally:
        csv.field_size_limit(before)


def parse(text, max_rows, max_field_chars=4096, max_columns=100, default_source="import",
          history=False):
    """Returns ([(line, row dict)], column errors); `line` is where the record starts.
    With `history`, columns naming history fields (leads.csvheaders.HISTORY_ALIASES) fill
    the row's `history`."""
    with _field_limit(max(len(text), max_field_chars) + 1):
        return _parse(text, max_rows, max_field_chars, max_columns, default_source, history)


def _parse(text, max_rows, max_field_chars, max_columns, default_source, history):
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader)
    except StopIteration:
        raise Invalid("The CSV is empty; it needs a header row.") from None
    except csv.Error as exc:
        raise Invalid(f"The CSV header cannot be read: {exc}.") from None
    if len(header) > max_columns:
        raise Invalid(f"At most {max_columns} columns per import.", max_columns=max_columns)
    targets, column_errors = columns(header, reader.line_num, max_field_chars, history)
    if ("name", None) not in targets:
        raise Invalid("The CSV header needs a name column (name, 姓名, ...).",
                      columns=[_shown(h.strip()) for h in header])
    rows = []
    start = reader.line_num + 1
    try:
        for record in reader:
            line, start = start, reader.line_num + 1
            if not any(cell.strip() for cell in record):
                continue
            if len(rows) >= max_rows:
                raise Invalid(f"At most {max_rows} rows per import.", max_rows=max_rows)
            rows.append((line, to_input(targets, record, default_source, max_field_chars)))
    except csv.Error as exc:
        raise Invalid(f"The CSV cannot be read near line {start}: {exc}.") from None
    return rows, column_errors


def columns(header, line=1, max_field_chars=4096, history=False):
    """Where each column goes: (lead field, None), ("utm"/"custom", key) or None (ignored),
    and an error for each column ignored for a reason the importer should hear."""
    targets, seen, errors = [], {}, []
    for number, text in enumerate(header, start=1):
        title = text.strip()
        target = _target(title, history)
        problem = None
        if target is None:
            pass
        elif len(title) > max_field_chars:
            problem = f"a header has at most {max_field_chars} characters"
        elif target[1] is not None and not _storable_key(target[1]):
            problem = "a key may not be empty, contain '.' or start with '$'"
        elif target in seen:
            problem = f"it repeats column {seen[target]}"
        if problem:
            errors.append({"line": line, "reason": "column", "errors": {
                "_column": [f"Column {number} ({_shown(title)!r}) was ignored: {problem}."]}})
            target = None
        if target is not None:
            seen[target] = number
        targets.append(target)
    return targets, errors


def _shown(title, limit=64):
    """Headers quoted back in errors are cut short: the import result is stored whole."""
    return title if len(title) <= limit else title[:limit] + "…"


def _target(title, history=False):
    if not title:
        return None
    field = lead_field(title)
    if field is not None:
        return field, None
    if history and history_field(title) is not None:
        return "history", history_field(title)
    key = title.lower()
    if key.startswith(UTM_PREFIX):
        return "utm", key[len(UTM_PREFIX):]
    return "custom", key


def _storable_key(key):
    """MongoDB (FerretDB v1 even more) refuses such keys; the import result stores them too."""
    return bool(key) and "." not in key and not key.startswith("$")


def to_input(targets, record, default_source, max_field_chars=4096):
    row = {"source": default_source}
    nested = {"utm": {}, "custom": {}, "history": {}}
    too_long = {}
    extra = len(record) - len(targets)
    for target, cell in zip(targets, record, strict=False):
        value = cell.strip()
        if not value or target is None:
            continue
        field, key = target
        if len(value) > max_field_chars:
            message = [f"At most {max_field_chars} characters per cell (this has {len(value)})."]
            if key is None:
                too_long[field] = message
            else:
                too_long.setdefault(field, {})[key] = message
        elif key is None:
            row[field] = value
        else:
            nested[field][key] = value
    row.update((field, values) for field, values in nested.items() if values)
    if extra > 0:
        row["_extra_cells"] = extra  # refused by the schema as an unknown field
    if too_long:
        row["_too_long"] = too_long
    return row
