"""Data: ShapesWorld generation (`unipic.data.shapes`), the dataset format (`unipic.data.shards`) and the
`generate_dataset` stage (`unipic.data.generate`). Submodules are imported on use so that `import unipic.data`
stays cheap for the CLI."""
