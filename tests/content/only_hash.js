// Independent CID check: npm ipfs-only-hash (ipfs-unixfs-importer) on each file.
// usage: node only_hash.js <cidVersion> <file>...   -> one JSON list of CIDs
const fs = require('fs')
const Hash = require('ipfs-only-hash')

async function main () {
  const version = Number(process.argv[2])
  const options = version === 1 ? { cidVersion: 1, rawLeaves: true } : { cidVersion: 0, rawLeaves: false }
  const out = []
  for (const file of process.argv.slice(3)) {
    out.push(await Hash.of(fs.createReadStream(file, { highWaterMark: 1 << 20 }), { ...options }))
  }
  process.stdout.write(JSON.stringify(out))
}
main().catch(err => { console.error(err); process.exit(1) })
