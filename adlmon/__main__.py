from adlmon.cli import main

raise SystemExit(main())
