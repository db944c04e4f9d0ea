from afflux_partners.entrypoints.main import main

main()
