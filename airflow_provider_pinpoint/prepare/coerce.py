"""Coercion of read columns into the types the API wants, column by column.

Readers hand over whatever types the input had (a CSV column of digits arrives as int64, a Parquet
timestamp may carry any unit and zone). Everything here is vectorised; each function returns the
normalised array and a mask of the rows whose value could not be coerced, so validation can reject
those rows by name instead of failing the batch. Empty strings become nulls: absent, like NaN.
"""

from __future__ import annotations

from functools import cache

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from airflow_provider_pinpoint.common.arrow import as_mask, import_pandas, none_of, single_chunk, valid_mask

TIMESTAMP = pa.timestamp("ms", tz="UTC")

# The instants ISO 8601's four-digit years can write, 0001-01-01T00:00:00.000Z to 9999-12-31T23:59:59.999Z,
# in milliseconds since the epoch; a timestamp outside them has no text Pinpoint would take.
FIRST_MS = -62_135_596_800_000
LAST_MS = 253_402_300_799_999
_MS_PER_UNIT = {"s": 1000, "ms": 1}
_UNITS_PER_MS = {"us": 1000, "ns": 1_000_000}
# Whole numbers beyond this lose digits as a double, the only number a JSON body carries.
EXACT_INTEGER = 2**53


def _empty_as_null(strings: pa.Array) -> pa.Array:
    if strings.null_count == len(strings):
        return strings
    filled = np.asarray(pc.fill_null(pc.binary_length(strings), 0).to_numpy(zero_copy_only=False)) > 0
    if filled.all():
        return strings
    return with_validity(strings, filled)


def _is_binary(type_: pa.DataType) -> bool:
    is_view = getattr(pa.types, "is_binary_view", None)
    return (
        pa.types.is_binary(type_)
        or pa.types.is_large_binary(type_)
        or pa.types.is_fixed_size_binary(type_)
        or (is_view is not None and is_view(type_))
    )


def _uuid_text(array: pa.Array) -> pa.Array:
    """A UUID column (Parquet's UUID type) as the canonical lower-case text, ``8-4-4-4-12`` hex digits."""
    storage = array.storage
    raw = np.frombuffer(storage.buffers()[1], dtype=np.uint8)[storage.offset * 16 : (storage.offset + len(array)) * 16]
    digits = _HEX[raw.reshape(-1, 16)].reshape(-1, 32)
    dash = np.full((len(array), 1), ord("-"), dtype=np.uint8)
    text = np.hstack(
        [digits[:, :8], dash, digits[:, 8:12], dash, digits[:, 12:16], dash, digits[:, 16:20], dash, digits[:, 20:]]
    )
    fixed = pa.Array.from_buffers(pa.binary(36), len(array), [None, pa.py_buffer(text.tobytes())])
    strings = pc.cast(fixed, pa.string())
    return with_validity(strings, valid_mask(array)) if array.null_count else strings


_HEX = np.frombuffer(b"".join(b"%02x" % byte for byte in range(256)), dtype=np.uint8).reshape(256, 2)


def _decoded(array: pa.Array | pa.ChunkedArray) -> tuple[pa.Array, np.ndarray]:
    """One plain array: dictionaries decoded, UUIDs as their canonical text, binary read as UTF-8 text
    (rows that are not UTF-8 fail, as null)."""
    array = single_chunk(array)
    if pa.types.is_dictionary(array.type):
        array = array.dictionary_decode()
    if isinstance(array.type, pa.BaseExtensionType):
        if getattr(array.type, "extension_name", None) == "arrow.uuid":
            return _uuid_text(array), none_of(array)
        array = array.storage
    if not _is_binary(array.type):
        return array, none_of(array)
    try:
        return pc.cast(array, pa.string()), none_of(array)
    except pa.ArrowInvalid:
        pass
    texts: list[str | None] = []
    failed = none_of(array)
    for i, value in enumerate(array.to_pylist()):
        try:
            texts.append(None if value is None else value.decode("utf-8"))
        except UnicodeDecodeError:
            texts.append(None)
            failed[i] = True
    return pa.array(texts, pa.string()), failed


def is_text(type_: pa.DataType) -> bool:
    return pa.types.is_string(type_) or pa.types.is_large_string(type_) or pa.types.is_string_view(type_)


def to_string(array: pa.Array | pa.ChunkedArray) -> tuple[pa.Array, np.ndarray]:
    """Any scalar column as strings (numbers by their text). Lists, structs and fractions cannot be one string."""
    array, undecoded = _decoded(array)
    if pa.types.is_null(array.type):
        return pa.nulls(len(array), pa.string()), none_of(array)
    if pa.types.is_nested(array.type):
        return pa.nulls(len(array), pa.string()), valid_mask(array)
    if pa.types.is_floating(array.type):
        return _float_text(array)
    if pa.types.is_timestamp(array.type):
        strings, failed = to_iso(array)
        return strings, failed
    try:
        strings = pc.cast(array, pa.string())
    except (pa.ArrowNotImplementedError, pa.ArrowInvalid):  # a type with no text (an interval...): every value fails
        return pa.nulls(len(array), pa.string()), valid_mask(array)
    return _empty_as_null(strings), undecoded


def _float_text(array: pa.Array) -> tuple[pa.Array, np.ndarray]:
    """Whole-number floats by their digits, exactly (``42.0`` -> ``42``, ``1e20`` -> 20 digits); fractions fail.

    pandas makes an integer column with one NaN float64, so phone numbers and ids arrive as floats;
    Arrow's float-to-text cast would send them as ``1.5550104471e+10``. NaN and infinities are absent.
    """
    numbers = pc.cast(array, pa.float64()).to_numpy(zero_copy_only=False)
    present = np.isfinite(numbers)
    whole = present & (np.floor(numbers) == numbers)
    fits = whole & (np.abs(numbers) < 2.0**63)
    digits = np.where(fits, numbers, 0).astype(np.int64)
    text = pc.cast(pa.array(digits, mask=~fits), pa.string())
    beyond = np.flatnonzero(whole & ~fits)
    if beyond.size:
        values = text.to_pylist()
        for i in beyond.tolist():
            values[i] = str(int(numbers[i]))
        text = pa.array(values, pa.string())
    return text, present & ~whole


def to_float(array: pa.Array | pa.ChunkedArray) -> tuple[pa.Array, np.ndarray]:
    """Numbers as float64. NaN and infinities become null (absent); text that is no number fails, and so
    does a whole number beyond ±2**53, which a double cannot hold exactly."""
    array, undecoded = _decoded(array)
    if pa.types.is_null(array.type):
        return pa.nulls(len(array), pa.float64()), none_of(array)
    if is_text(array.type):
        text = _empty_as_null(pc.cast(array, pa.string()))
        try:
            numbers = pc.cast(text, pa.float64())
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            pd = import_pandas()  # only text Arrow cannot cast whole needs pandas' per-value parsing
            parsed = pd.to_numeric(pd.Series(text.to_numpy(zero_copy_only=False), dtype=object), errors="coerce")
            numbers = pa.array(parsed.to_numpy(dtype=np.float64, na_value=np.nan), pa.float64(), from_pandas=True)
        spelt_nan = pc.match_substring_regex(text, r"^\s*[+-]?nan\s*$", ignore_case=True)
        failed = (valid_mask(text) & ~valid_mask(numbers) & ~as_mask(spelt_nan)) | undecoded
    elif pa.types.is_integer(array.type):
        failed = none_of(array)
        if array.type.bit_width == 64:  # narrower integers always fit
            failed |= as_mask(pc.greater(array, pa.scalar(EXACT_INTEGER, array.type)))
            if pa.types.is_signed_integer(array.type):
                failed |= as_mask(pc.less(array, pa.scalar(-EXACT_INTEGER, array.type)))
        numbers = pc.cast(with_validity(array, ~failed), pa.float64())
    elif pa.types.is_floating(array.type) or pa.types.is_decimal(array.type):
        numbers = pc.cast(array, pa.float64())
        failed = none_of(array)
    else:
        return pa.nulls(len(array), pa.float64()), valid_mask(array)
    finite = pc.is_finite(numbers)
    numbers = pc.if_else(finite, numbers, pa.scalar(None, pa.float64()))
    return numbers, failed


def to_timestamp(array: pa.Array | pa.ChunkedArray) -> tuple[pa.Array, np.ndarray]:
    """Timestamps as UTC milliseconds. Naive values are read as UTC; numbers are refused (which epoch unit?),
    and so are instants outside the years 0001 to 9999 (:data:`FIRST_MS`, :data:`LAST_MS`)."""
    array, undecoded = _decoded(array)
    if pa.types.is_null(array.type):
        return pa.nulls(len(array), TIMESTAMP), none_of(array)
    if pa.types.is_timestamp(array.type):
        outside = _outside_years(array)
        if outside.any():
            array = with_validity(array, ~outside)
        return _floored_to_ms(array), outside
    if pa.types.is_date(array.type):
        stamps = pc.cast(pc.cast(array, pa.timestamp("ms")), TIMESTAMP)
        outside = _outside_years(stamps)
        return with_validity(stamps, ~outside), outside
    if is_text(array.type):
        text = _empty_as_null(pc.cast(array, pa.string()))
        try:
            stamps = pc.cast(text, TIMESTAMP)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            pd = import_pandas()  # only text Arrow cannot cast whole needs pandas' per-value parsing
            parsed = pd.to_datetime(
                pd.Series(text.to_numpy(zero_copy_only=False), dtype=object),
                format="ISO8601",
                utc=True,
                errors="coerce",
            )
            stamps = pa.array(parsed.dt.as_unit("ms").dt.tz_convert(None).to_numpy(), TIMESTAMP, from_pandas=True)
        stamps = with_validity(stamps, ~_outside_years(stamps))
        return stamps, (valid_mask(text) & ~valid_mask(stamps)) | undecoded
    return pa.nulls(len(array), TIMESTAMP), valid_mask(array)


def _floored_to_ms(stamps: pa.Array) -> pa.Array:
    """Timestamps of any unit and zone as UTC milliseconds, finer units rounded down (toward the past):
    Arrow's cast rounds toward 1970, which put 1969-12-31T23:59:59.9995 at 1970-01-01T00:00:00.000,
    not at .999 as the same instant given as text or int96 is."""
    values = stamps.cast(pa.int64())
    per_ms = _UNITS_PER_MS.get(stamps.type.unit)
    if per_ms is None:
        return pc.cast(pc.cast(values, pa.timestamp(stamps.type.unit, tz="UTC")), TIMESTAMP, safe=False)
    quotient = pc.divide(values, per_ms)  # toward zero
    behind = pc.less(pc.subtract(values, pc.multiply(quotient, per_ms)), 0)
    return pc.cast(pc.subtract(quotient, pc.cast(behind, pa.int64())), TIMESTAMP)


def _outside_years(stamps: pa.Array) -> np.ndarray:
    """Timestamps (any unit) outside the years 0001 to 9999, compared in their own unit so nothing overflows."""
    unit = stamps.type.unit
    if unit in _UNITS_PER_MS:
        first, last = FIRST_MS * _UNITS_PER_MS[unit], LAST_MS * _UNITS_PER_MS[unit] + _UNITS_PER_MS[unit] - 1
    else:
        first, last = -(-FIRST_MS // _MS_PER_UNIT[unit]), LAST_MS // _MS_PER_UNIT[unit]
    values = stamps.cast(pa.int64())
    if unit == "ns":  # int64 nanoseconds span 1677 to 2262: always inside
        return none_of(values)
    return as_mask(pc.or_(pc.less(values, first), pc.greater(values, last)))


def to_int(array: pa.Array | pa.ChunkedArray) -> tuple[pa.Array, np.ndarray]:
    """Whole numbers as int64; a fraction or text fails."""
    numbers, failed = to_float(array)
    values = numbers.to_numpy(zero_copy_only=False)
    fractional = np.zeros(len(values), dtype=bool)
    present = ~np.isnan(values)
    fractional[present] = (values[present] != np.floor(values[present])) | (np.abs(values[present]) > 2**53)
    numbers = pc.if_else(pa.array(fractional), pa.scalar(None, pa.float64()), numbers)
    return pc.cast(numbers, pa.int64()), failed | fractional


def to_string_lists(array: pa.Array | pa.ChunkedArray) -> tuple[pa.Array, np.ndarray]:
    """Multi-valued attributes as list<string> without null or empty values; a plain column is one value."""
    array = single_chunk(array)
    if pa.types.is_dictionary(array.type):
        array = array.dictionary_decode()
    if pa.types.is_list(array.type) or pa.types.is_large_list(array.type) or pa.types.is_fixed_size_list(array.type):
        values, failed = to_string(pc.list_flatten(array))
        if pa.types.is_list(array.type) and not array.null_count and not values.null_count and not failed.any():
            lists = _all_kept(array, values)
            if lists is not None:
                return lists, np.zeros(len(array), dtype=bool)
        parents = pc.list_parent_indices(array).to_numpy()
        row_failed = np.zeros(len(array), dtype=bool)
        row_failed[parents[failed]] = True
    else:
        values, row_failed = to_string(array)
        parents = np.arange(len(array))
    keep = valid_mask(values)
    kept_parents = parents[keep]
    counts = np.bincount(kept_parents, minlength=len(array))
    offsets = np.zeros(len(array) + 1, dtype=np.int32)
    np.cumsum(counts, out=offsets[1:])
    mask = pa.array(counts == 0)
    lists = pa.ListArray.from_arrays(pa.array(offsets), values.filter(pa.array(keep)), mask=mask)
    return lists, row_failed


def _all_kept(array: pa.ListArray, values: pa.Array) -> pa.Array | None:
    """:func:`to_string_lists` of a list column none of whose values it drops (no null list, no null
    or empty item: ``values``, its items as text, hold no null) when every list has an item: the
    same lists, built from the column's own offsets, without counting each row's kept items. None
    when a list is empty (its row becomes null: the general way)."""
    offsets = np.asarray(array.offsets.to_numpy(zero_copy_only=False), dtype=np.int32)
    if len(offsets) > 1 and not (offsets[1:] > offsets[:-1]).all():
        return None
    if offsets[0]:
        offsets = offsets - offsets[0]
    return pa.ListArray.from_arrays(pa.array(offsets), values, mask=pa.array(np.zeros(len(array), dtype=bool)))


def to_iso(stamps: pa.Array, prefix: str = "", suffix: str = "") -> tuple[pa.Array, np.ndarray]:
    """ISO 8601 UTC text with milliseconds and ``Z`` (``2026-01-01T00:00:05.123Z``), between ``prefix`` and ``suffix``.

    Assembled from lookup tables (one per distinct day, second of the day and millisecond), which
    is several times faster than Arrow's strftime.
    """
    stamps, failed = to_timestamp(stamps)
    present = valid_mask(stamps)
    millis = np.where(present, pc.fill_null(pc.cast(stamps, pa.int64()), 0).to_numpy(), 0)
    seconds, ms = np.divmod(millis, 1000)
    days, second_of_day = np.divmod(seconds, 86400)
    first_day = int(days[present].min()) if present.any() else 0
    day_span = int(days[present].max()) - first_day + 1 if present.any() else 1
    if day_span > 4 * len(days) + 1024:
        distinct, day_index = np.unique(days, return_inverse=True)
        day_names = pc.cast(pa.array(distinct.astype(np.int32), pa.date32()), pa.string())
    else:
        day_index = np.where(present, days - first_day, 0)
        span = np.arange(first_day, first_day + day_span, dtype=np.int32)
        day_names = pc.cast(pa.array(span, pa.date32()), pa.string())
    text = pc.binary_join_element_wise(
        prefix,
        pc.take(day_names, pa.array(day_index)),
        pc.take(_times_of_day(), pa.array(second_of_day)),
        pc.take(_milliseconds(), pa.array(ms)),
        suffix,
        "",
    )
    return with_validity(text, present), failed


def with_validity(array: pa.Array, valid: np.ndarray) -> pa.Array:
    """``array`` with nulls where ``valid`` is false (null where it was null), without copying its values."""
    if array.offset:
        return pc.if_else(pa.array(valid), array, pa.scalar(None, array.type))
    if array.null_count:
        valid = valid & valid_mask(array)
    bitmap = pa.py_buffer(np.packbits(valid, bitorder="little"))
    return pa.Array.from_buffers(array.type, len(array), [bitmap, *array.buffers()[1:]])


@cache
def _times_of_day() -> pa.Array:
    """``T00:00:00.`` to ``T23:59:59.``, one per second of the day, assembled by Arrow (86,400 Python
    strings would cost a small load more than its rows)."""
    second = np.arange(86_400)
    hours = pa.array([f"T{h:02d}" for h in range(24)], pa.string())
    sixty = pa.array([f"{n:02d}" for n in range(60)], pa.string())
    return pc.binary_join_element_wise(
        pc.take(hours, pa.array(second // 3600)),
        pc.take(sixty, pa.array(second // 60 % 60)),
        pc.binary_join_element_wise(pc.take(sixty, pa.array(second % 60)), ".", ""),
        ":",
    )


@cache
def _milliseconds() -> pa.Array:
    return pa.array([f"{ms:03d}Z" for ms in range(1000)], pa.string())
