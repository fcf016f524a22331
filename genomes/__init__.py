"""Search-space declarations and saved genomes (data, shipped as ``evonas.genomes``)."""
