//! Nothing here: the scenarios are in `tests/`.
