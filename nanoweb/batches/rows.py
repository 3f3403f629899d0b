"""A list of prompts as rows: read from pasted lines or a CSV file, each checked against the
catalogue and priced before anything runs."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field, replace
from decimal import Decimal

from nanoweb.boards.models import Board
from nanoweb.credits import ledger
from nanoweb.providers import routing
from nanoweb.providers.models import CatalogueEntry, Options
from nanoweb.studio.forms import MAX_PROMPT
from nanoweb.studio.jobs.spec import JobSpec
from nanoweb.studio.models import GeneratedImage, Generation

MAX_ROWS = 500
MAX_FILE_BYTES = 2 * 1024 * 1024
COLUMNS = ("prompt", "model", "aspect_ratio", "resolution", "format", "count", "board", "references")
MAX_COUNT = 4


class Unreadable(ValueError):
    """The whole submission cannot be read (not text, no prompt column, too many rows)."""


@dataclass
class Row:
    """One line of the list: its values as given, then what it will make and cost, or what is wrong."""

    line: int
    values: dict[str, str]
    errors: list[str] = field(default_factory=list)
    spec: JobSpec | None = None
    board: Board | None = None
    price: Decimal = Decimal(0)  # the whole row (all its images)

    @property
    def images(self) -> int:
        return self.spec.count if self.spec else 0


@dataclass(frozen=True)
class Defaults:
    """What the page chose for rows that do not say: model and options."""

    model: str = ""
    aspect_ratio: str = ""
    resolution: str = ""
    output_format: str = ""


def decode(data: bytes) -> str:
    if len(data) > MAX_FILE_BYTES:
        raise Unreadable(f"The file is too large: at most {MAX_FILE_BYTES // (1024 * 1024)} MB.")
    if b"\x00" in data:
        raise Unreadable("The file is not text: upload a CSV file (UTF-8).")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise Unreadable(f"The file is not UTF-8 text (byte {exc.start + 1}): save it as a UTF-8 CSV.") from None


def from_lines(text: str) -> list[Row]:
    """Pasted prompts, one a line; blank lines are skipped but keep their number."""
    rows = [Row(n, {"prompt": line.strip()}) for n, line in enumerate(text.splitlines(), 1) if line.strip()]
    return within_limit(rows)


def from_csv(text: str) -> list[Row]:
    """A CSV with a header line: `prompt`, and optionally the other COLUMNS."""
    reader = csv.reader(io.StringIO(text))
    try:
        header = [name.strip().lower() for name in next(reader)]
    except StopIteration:
        raise Unreadable("The file is empty: the first line names the columns, e.g. prompt,model.") from None
    except csv.Error as exc:
        raise Unreadable(f"Line 1: {exc}") from None
    unknown = [name for name in header if name not in COLUMNS]
    if "prompt" not in header or unknown:
        what = f"unknown column {', '.join(unknown)}" if unknown else "no prompt column"
        raise Unreadable(f"Line 1: {what}. The columns are: {', '.join(COLUMNS)} (prompt is required).")
    if len(set(header)) != len(header):
        raise Unreadable("Line 1: a column is named twice.")
    rows = []
    try:
        for values in reader:
            line = reader.line_num
            if not any(value.strip() for value in values):
                continue
            row = Row(line, {name: value.strip() for name, value in zip(header, values, strict=False)})
            if len(values) > len(header):
                row.errors.append(f"{len(values)} values for {len(header)} columns")
            rows.append(row)
            if len(rows) > MAX_ROWS:
                break
    except csv.Error as exc:
        raise Unreadable(f"Line {reader.line_num}: {exc}") from None
    return within_limit(rows)


def within_limit(rows: list[Row]) -> list[Row]:
    if len(rows) > MAX_ROWS:
        raise Unreadable(
            f"More than {MAX_ROWS} rows: split the list (line {rows[MAX_ROWS].line} is row {MAX_ROWS + 1})."
        )
    if not rows:
        raise Unreadable("No prompts: write one a line, or upload a CSV with a prompt column.")
    return rows


def check(owner, rows: list[Row], defaults: Defaults, *, cheaper: bool = False) -> list[Row]:
    """Fill each row's job, board and price, or its errors. Nothing is stored."""
    boards = {board.name.casefold(): board for board in Board.visible(owner)}
    choices: dict[tuple, list[CatalogueEntry]] = {}
    models = set(routing.model_names())
    for row in rows:
        row.errors += _check(owner, row, defaults, models, boards, choices, cheaper)
    return rows


def _check(owner, row: Row, defaults: Defaults, models: set[str], boards, choices, cheaper: bool) -> list[str]:
    values = row.values
    prompt = values.get("prompt", "")
    errors = []
    if not prompt:
        errors.append("no prompt")
    elif len(prompt) > MAX_PROMPT:
        errors.append(f"the prompt is too long ({len(prompt)} characters, at most {MAX_PROMPT})")
    model = values.get("model") or defaults.model
    if not model:
        return [*errors, "no model: choose one on the page or in a model column"]
    if model not in models:
        return [*errors, f"unknown model {model!r}: choose one of {', '.join(sorted(models))}"]
    count_text = values.get("count") or "1"
    count = int(count_text) if count_text.isdigit() else 0
    if not 1 <= count <= MAX_COUNT:
        errors.append(f"count {count_text!r}: 1 to {MAX_COUNT} images")
    board = None
    if name := values.get("board"):
        board = boards.get(name.casefold())
        if board is None:
            errors.append(f"no board named {name!r} that you can see")
    results: list[GeneratedImage] = []
    if refs := values.get("references", "").split():
        ids = [int(ref) for ref in refs if ref.isdigit()]
        found = GeneratedImage.objects.filter(pk__in=ids, generation__in=Generation.visible(owner)).in_bulk()
        results = [found[pk] for pk in ids if pk in found]
        if len(results) != len(refs):
            errors.append("references: give the numbers of earlier results you can see, separated by spaces")
    base = Options(defaults.aspect_ratio, defaults.resolution, defaults.output_format)
    if values.get("model"):
        base = fit_defaults(model, base)
    options = Options(
        aspect_ratio=values.get("aspect_ratio") or base.aspect_ratio,
        resolution=values.get("resolution") or base.resolution,
        output_format=values.get("format") or base.output_format,
    )
    need = routing.Need(model, options, len(results))
    key = (need, cheaper)
    if key not in choices:
        fits = routing.candidates(need)
        choices[key] = [row for row in fits if row.account.adapter_class.vendor_batches] if cheaper else fits
    rows = choices[key]
    if not rows:
        served = list(routing.offered().filter(name=model))
        why = sorted({r.unsupported(options, len(results)) for r in served} - {""})
        if why:
            errors.append(f"{model} offers {'; '.join(why)}")
        elif cheaper:
            errors.append(f"no account offers {model} through a vendor's batch (half price): run it normally")
        else:
            errors.append(f"no account serves {model} with these options")
    if errors:
        return errors
    best = rows[0]
    lane = Generation.VENDOR if cheaper else Generation.LIST
    row.spec = JobSpec(
        prompt=prompt, model_name=model, options=options, account=best.account_id if cheaper else None, count=count,
        reference_results=tuple(results), lane=lane,
    )  # fmt: skip
    price = best.price(options.resolution or best.default_resolution)
    row.price = (ledger.vendor_batch_price(price) if cheaper else price) * count
    row.board = board
    return []


def fit_defaults(model: str, options: Options) -> Options:
    """The page's options for a row that names its own model: those the model lacks fall back to
    its own defaults (a 2K default does not refuse a row for a 1K-only model)."""
    rows = list(routing.offered().filter(name=model))
    if not rows:
        return options
    row = rows[0]
    return replace(
        options,
        aspect_ratio=options.aspect_ratio if options.aspect_ratio in row.aspect_ratios else "",
        resolution=options.resolution if options.resolution in row.resolutions else "",
        output_format=options.output_format if options.output_format in row.output_formats else "",
    )
