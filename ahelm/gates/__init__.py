"""Gates: conditions on scenario metrics that decide the release verdict."""
