//! FFD 1.05 TLV codec, typed fiscal documents and the FN-to-OFD session/container envelope, with no IO.
