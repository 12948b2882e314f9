"""Every limit of the contract sandbox. They are part of consensus: changing one changes receipts."""

from __future__ import annotations

STEPS_MAX_DEFAULT = 1_000_000  # steps a module body (or a caller that names no limit) may spend
CALL_DEPTH_MAX = 64  # nested contract function and lambda frames, across cross-contract calls

INT_BITS_MAX = 4096  # integers produced by checked arithmetic
ITEMS_MAX = 1_000_000  # elements (chars, bytes, items) of one value a checked operation produces
SIZE_SHIFT = 4  # C-speed copies and scans cost one step per 2**SIZE_SHIFT elements
NEST_MAX = 32  # nesting of values that comparisons, hashing, sorting and formatting walk

SOURCE_CHARS_MAX = 128 * 1024
AST_DEPTH_MAX = 100  # nesting of the syntax tree; deeper sources are refused before compiling
NUMBER_DIGITS_MAX = 600  # digits of a decimal literal or a parsed decimal string
FORMAT_WIDTH_MAX = 256  # width and precision in an f-string format spec
MESSAGE_CHARS_MAX = 1000  # error messages that reach a receipt
