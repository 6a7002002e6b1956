"""CSV of leads -> (line number, lead input) pairs for the same schema as a single capture.

Columns are matched case-insensitively; `utm_*` columns fill `utm`, and every column that is
not a lead field becomes a custom field. Empty cells count as missing.
"""
import csv
import io

from kit.errors import Invalid

LEAD_COLUMNS = ("name", "company", "email", "phone", "country", "region", "source")
UTM_PREFIX = "utm_"


def decode(raw):
    """UTF-8 with or without a byte-order mark."""
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise Invalid(f"The CSV is not UTF-8: {exc}.") from None


def parse(text, max_rows, default_source="import"):
    """Returns [(line, row dict)], `line` being where the record starts in the file."""
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader)
    except StopIteration:
        raise Invalid("The CSV is empty; it needs a header row.") from None
    except csv.Error as exc:
        raise Invalid(f"The CSV header cannot be read: {exc}.") from None
    columns = [h.strip().lower() for h in header]
    if "name" not in columns:
        raise Invalid("The CSV header needs a 'name' column.", columns=columns)
    rows = []
    start = reader.line_num + 1
    try:
        for record in reader:
            line, start = start, reader.line_num + 1
            if not any(cell.strip() for cell in record):
                continue
            if len(rows) >= max_rows:
                raise Invalid(f"At most {max_rows} rows per import.", max_rows=max_rows)
            rows.append((line, to_input(columns, record, default_source)))
    except csv.Error as exc:
        raise Invalid(f"The CSV cannot be read near line {start}: {exc}.") from None
    return rows


def to_input(columns, record, default_source):
    row = {"source": default_source}
    utm, custom = {}, {}
    extra = len(record) - len(columns)
    for column, cell in zip(columns, record, strict=False):
        value = cell.strip()
        if not value or not column:
            continue
        if column in LEAD_COLUMNS:
            row[column] = value
        elif column.startswith(UTM_PREFIX):
            utm[column[len(UTM_PREFIX):]] = value
        else:
            custom[column] = value
    if utm:
        row["utm"] = utm
    if custom:
        row["custom"] = custom
    if extra > 0:
        row["_extra_cells"] = extra  # refused by the schema as an unknown field
    return row
