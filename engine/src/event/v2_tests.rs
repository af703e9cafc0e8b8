//! The new Security Hub (OCSF), end to end through `parse`.
