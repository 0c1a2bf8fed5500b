#![doc = include_str!("../docs/CONTRACT.md")]
