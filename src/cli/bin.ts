import { main } from "./main.js";

// A closed pipe (`itp graph x | head`) is not an error.
process.stdout.on("error", (e: NodeJS.ErrnoException) => {
  if (e.code === "EPIPE") process.exit(process.exitCode ?? 0);
});

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (e: unknown) => {
    // Only a bug in itp reaches here: user errors are diagnostics. Keep the trace out of sight unless asked for.
    const err = e as Error;
    process.stderr.write(`itp: internal error: ${err?.message ?? String(e)}\n`);
    if (process.env["ITP_DEBUG"]) process.stderr.write(`${err?.stack ?? ""}\n`);
    else process.stderr.write("this is a bug in itp; rerun with ITP_DEBUG=1 for details and report it\n");
    process.exitCode = 3;
  },
);
