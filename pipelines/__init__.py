"""KFP pipeline definitions. Compiled IR lives in pipelines/compiled/ and is checked current in CI."""
