"""Rule claims_report: REPORT.md, summary.json and the README snippet from all.json."""
from replicate.rulelib import claims_report

claims_report(snakemake.input.all, claim_files=list(snakemake.params.claim_files), report=snakemake.output.report, summary=snakemake.output.summary,  # noqa: F821
              readme=snakemake.output.readme, headline=snakemake.params.headline,  # noqa: F821
              project=snakemake.params.project, analogues=snakemake.params.analogues,  # noqa: F821
              log_path=snakemake.log[0])  # noqa: F821
