from maskreview.cli import main

if __name__ == "__main__":  # evaluation workers import the main module again (as __mp_main__)
    raise SystemExit(main())
