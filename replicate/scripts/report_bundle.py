"""Rule report_bundle: one category's claims page, figures and tables for `snakemake --report`."""
from replicate.browsable import bundle

counts = bundle(snakemake.wildcards.category, all_json=snakemake.input.claims,  # noqa: F821
                files=list(snakemake.input.assets), claims_out=snakemake.output.claims,  # noqa: F821
                figures_dir=snakemake.output.figures, tables_dir=snakemake.output.tables)  # noqa: F821
with open(snakemake.log[0], "w") as log:  # noqa: F821
    print(f"{snakemake.wildcards.category}: {counts}", file=log)  # noqa: F821
