from afflux_payouts.entrypoints.main import main

main()
