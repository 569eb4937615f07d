//! olreg (being written)
