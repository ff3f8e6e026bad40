import warnings

import dagster as dg

# Partitioned asset checks are "preview" in Dagster 1.13; the daily checks (open breaks,
# bars covering ticks) need them, and the warning would be printed on every run.
warnings.filterwarnings("ignore", message="Specifying a partitions_def on an AssetCheckSpec")

# From 2020: the vendor samples (HistData 2020) and simulations started in the past have
# report days too.
DAILY = dg.DailyPartitionsDefinition(start_date="2020-01-01", end_offset=1)
MONTHLY = dg.MonthlyPartitionsDefinition(start_date="2020-01-01", end_offset=1)
YEARLY = dg.TimeWindowPartitionsDefinition(
    start="2020", cron_schedule="0 0 1 1 *", fmt="%Y", end_offset=1
)
