"""Language understanding: words, the catalog lexicon, the sentence encoder port, fitted decisions."""
