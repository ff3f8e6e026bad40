import dagster as dg

DAILY = dg.DailyPartitionsDefinition(start_date="2026-01-01", end_offset=1)
MONTHLY = dg.MonthlyPartitionsDefinition(start_date="2026-01-01", end_offset=1)
YEARLY = dg.TimeWindowPartitionsDefinition(
    start="2026", cron_schedule="0 0 1 1 *", fmt="%Y", end_offset=1
)
