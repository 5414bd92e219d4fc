#!/usr/bin/env node
import "../dist/itp.js";
