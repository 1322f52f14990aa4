"""Build scripts for evalkit's offline Norwegian parsers (trained from the local data mirror)."""
