"""Grammar oracles (installed as ``evalkit.oracles``): parsers behind one interface (`base`),
the well-formedness rule (`rule`), spec loading (`specs`) and the parse cache (`cache`)."""
