//! Shtrih-M protocol v1: frames, typed commands and answers, and the link state machine, with no IO.
