# What happened to each recipient, then the outcome and what to do next, from smtpcheck's JSON
# report:
#   smtpcheck send ... --format json | jq -r -f examples/recipients.jq
(.recipients[]
  | "\(if .accepted then "accepted" else "REFUSED " end)  \(.address)  \((.reply.lines // ["(not tried)"]) | join(" / "))"),
"\(.outcome), exit \(.exit_code)\(if .failure then " at \(.failure.stage): \(.failure.hint.next_step)" else "" end)"
