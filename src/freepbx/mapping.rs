//! Snapshot → Desired: the cxpanel rules of reference/freepbx-source.md §6, with its flaws fixed.
