"""Test material for tests, the demo and the benchmarks (not imported by production code paths): synthetic films
(`testing.films`) and the real speech sets with their reference text (`testing.speech`)."""
