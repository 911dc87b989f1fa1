//! Headroom sizing for placeholders (DESIGN.md "Headroom sizing"): being built with the
//! simulator issue. Nothing here yet.
