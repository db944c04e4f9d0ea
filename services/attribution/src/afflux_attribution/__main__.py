from afflux_attribution.entrypoints.main import main

main()
