//! The HTTP edge: input that must not hurt the server, and rate limits keyed on who is proven.
