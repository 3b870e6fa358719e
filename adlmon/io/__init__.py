"""File formats (DESIGN §2): archive lines, capture lines, LZ4; readers and writers
used by replay, capture, the fakes and the node tailer. No venue is named here."""
