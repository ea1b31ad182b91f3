//! Integration tests of the `shared` core that need a process of their own.

mod runner;
