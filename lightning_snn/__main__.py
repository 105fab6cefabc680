import sys

if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "export":
        from lightning_snn.nir.command import main as export_main

        sys.exit(export_main(sys.argv[2:]))
    from lightning_snn.cli import main

    main()
