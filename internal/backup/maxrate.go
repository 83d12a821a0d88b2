package backup

// NoMaxRate as Options.MaxRateKB lifts the instance's pg_standby.max_rate
// for one run (run --max-rate 0): 0 there means "as configured".
const NoMaxRate = -1
