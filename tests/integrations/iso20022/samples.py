"""Bank files written by hand, the way a bank would send them (not by our builders): what the
readers must understand, including what our own builders never write (NOTPROVIDED, PRCD, several
Ustrd lines, proprietary reason codes, statuses given per block, fields we do not read)."""

from __future__ import annotations

# An end-of-day statement. Opening 500,000.00; booked: a batched debit of two disbursements
# (81,234.50), a repayment quoting its loan (20,500.00), a credit by creditor reference
# (3,000.00), the return of a disbursement (0.01, a reversal), a credit quoting nothing we know
# (999.99); a pending credit (100.00) that is not booked. Closing 443,265.50.
CAMT_053 = """<?xml version="1.0" encoding="UTF-8"?>
<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.08">
 <BkToCstmrStmt>
  <GrpHdr><MsgId>HBSC-STMT-20260302</MsgId><CreDtTm>2026-03-02T23:10:00+08:00</CreDtTm>
   <MsgPgntn><PgNb>1</PgNb><LastPgInd>true</LastPgInd></MsgPgntn></GrpHdr>
  <Stmt>
   <Id>STMT-20260302-001</Id>
   <ElctrncSeqNb>42</ElctrncSeqNb>
   <CreDtTm>2026-03-02T23:10:00+08:00</CreDtTm>
   <FrToDt><FrDtTm>2026-03-02T00:00:00+08:00</FrDtTm><ToDtTm>2026-03-02T23:59:59+08:00</ToDtTm></FrToDt>
   <Acct><Id><Othr><Id>6222020200001234567</Id></Othr></Id><Ccy>CNY</Ccy>
    <Ownr><Nm>Harbour Bank SCF Lending</Nm></Ownr></Acct>
   <Bal><Tp><CdOrPrtry><Cd>OPBD</Cd></CdOrPrtry></Tp><Amt Ccy="CNY">500000.00</Amt>
    <CdtDbtInd>CRDT</CdtDbtInd><Dt><Dt>2026-03-02</Dt></Dt></Bal>
   <Bal><Tp><CdOrPrtry><Cd>CLBD</Cd></CdOrPrtry></Tp><Amt Ccy="CNY">443265.50</Amt>
    <CdtDbtInd>CRDT</CdtDbtInd><Dt><Dt>2026-03-02</Dt></Dt></Bal>
   <Bal><Tp><CdOrPrtry><Cd>CLAV</Cd></CdOrPrtry></Tp><Amt Ccy="CNY">443265.50</Amt>
    <CdtDbtInd>CRDT</CdtDbtInd><Dt><Dt>2026-03-02</Dt></Dt></Bal>
   <TxsSummry>
    <TtlNtries><NbOfNtries>6</NbOfNtries><Sum>105834.50</Sum></TtlNtries>
    <TtlCdtNtries><NbOfNtries>5</NbOfNtries><Sum>24600.00</Sum></TtlCdtNtries>
    <TtlDbtNtries><NbOfNtries>1</NbOfNtries><Sum>81234.50</Sum></TtlDbtNtries>
   </TxsSummry>
   <Ntry>
    <NtryRef>1</NtryRef>
    <Amt Ccy="CNY">81234.50</Amt><CdtDbtInd>DBIT</CdtDbtInd><Sts><Cd>BOOK</Cd></Sts>
    <BookgDt><Dt>2026-03-02</Dt></BookgDt><ValDt><Dt>2026-03-02</Dt></ValDt>
    <AcctSvcrRef>HB20260302000101</AcctSvcrRef>
    <BkTxCd><Domn><Cd>PMNT</Cd><Fmly><Cd>ICDT</Cd><SubFmlyCd>DMCT</SubFmlyCd></Fmly></Domn></BkTxCd>
    <NtryDtls>
     <Btch><MsgId>SCF-20260302-0001</MsgId><PmtInfId>SCF-20260302-0001-00001</PmtInfId>
      <NbOfTxs>2</NbOfTxs></Btch>
     <TxDtls>
      <Refs><MsgId>SCF-20260302-0001</MsgId><EndToEndId>DSB-000001</EndToEndId></Refs>
      <Amt Ccy="CNY">80000.00</Amt><CdtDbtInd>DBIT</CdtDbtInd>
      <RltdPties><Cdtr><Pty><Nm>华东机械制造有限公司</Nm></Pty></Cdtr>
       <CdtrAcct><Id><Othr><Id>6228480010000000001</Id></Othr></Id></CdtrAcct></RltdPties>
      <RmtInf><Ustrd>LN-2026-000001</Ustrd></RmtInf>
     </TxDtls>
     <TxDtls>
      <Refs><EndToEndId>DSB-000002</EndToEndId></Refs>
      <Amt Ccy="CNY">1234.50</Amt><CdtDbtInd>DBIT</CdtDbtInd>
      <RltdPties><Cdtr><Pty><Nm>Rhein Präzision GmbH</Nm></Pty></Cdtr>
       <CdtrAcct><Id><IBAN>DE89370400440532013000</IBAN></Id></CdtrAcct></RltdPties>
      <RltdAgts><CdtrAgt><FinInstnId><BICFI>COBADEFFXXX</BICFI></FinInstnId></CdtrAgt></RltdAgts>
      <RmtInf><Ustrd>LN-2026-000002</Ustrd></RmtInf>
     </TxDtls>
    </NtryDtls>
   </Ntry>
   <Ntry>
    <Amt Ccy="CNY">20500.00</Amt><CdtDbtInd>CRDT</CdtDbtInd><Sts><Cd>BOOK</Cd></Sts>
    <BookgDt><Dt>2026-03-02</Dt></BookgDt><ValDt><Dt>2026-03-02</Dt></ValDt>
    <AcctSvcrRef>HB20260302000102</AcctSvcrRef>
    <BkTxCd><Domn><Cd>PMNT</Cd><Fmly><Cd>RCDT</Cd><SubFmlyCd>DMCT</SubFmlyCd></Fmly></Domn></BkTxCd>
    <NtryDtls><TxDtls>
     <Refs><EndToEndId>NOTPROVIDED</EndToEndId></Refs>
     <Amt Ccy="CNY">20500.00</Amt>
     <RltdPties><Dbtr><Pty><Nm>苏州恒达经销有限公司</Nm></Pty></Dbtr>
      <DbtrAcct><Id><Othr><Id>6217000010001112223</Id></Othr></Id></DbtrAcct></RltdPties>
     <RmtInf><Ustrd>LN-2026-000001</Ustrd><Ustrd>repayment</Ustrd></RmtInf>
    </TxDtls></NtryDtls>
   </Ntry>
   <Ntry>
    <Amt Ccy="CNY">3000.00</Amt><CdtDbtInd>CRDT</CdtDbtInd><Sts><Cd>BOOK</Cd></Sts>
    <BookgDt><Dt>2026-03-02</Dt></BookgDt><ValDt><DtTm>2026-03-02T15:04:05+08:00</DtTm></ValDt>
    <AcctSvcrRef>HB20260302000103</AcctSvcrRef>
    <BkTxCd><Domn><Cd>PMNT</Cd><Fmly><Cd>RCDT</Cd><SubFmlyCd>DMCT</SubFmlyCd></Fmly></Domn></BkTxCd>
    <NtryDtls><TxDtls>
     <RltdPties><Dbtr><Pty><Nm>无锡远航贸易有限公司</Nm></Pty></Dbtr>
      <DbtrAcct><Id><Othr><Id>6217000010009998887</Id></Othr></Id></DbtrAcct></RltdPties>
     <RmtInf><Strd><CdtrRefInf><Tp><CdOrPrtry><Cd>SCOR</Cd></CdOrPrtry></Tp>
      <Ref>RF18539007547034</Ref></CdtrRefInf></Strd></RmtInf>
    </TxDtls></NtryDtls>
   </Ntry>
   <Ntry>
    <Amt Ccy="CNY">0.01</Amt><CdtDbtInd>CRDT</CdtDbtInd><RvslInd>true</RvslInd>
    <Sts><Cd>BOOK</Cd></Sts>
    <BookgDt><Dt>2026-03-02</Dt></BookgDt><ValDt><Dt>2026-03-02</Dt></ValDt>
    <AcctSvcrRef>HB20260302000104</AcctSvcrRef>
    <BkTxCd><Domn><Cd>PMNT</Cd><Fmly><Cd>ICDT</Cd><SubFmlyCd>RRTN</SubFmlyCd></Fmly></Domn></BkTxCd>
    <NtryDtls><TxDtls>
     <Refs><EndToEndId>DSB-000003</EndToEndId></Refs>
     <Amt Ccy="CNY">0.01</Amt>
     <RmtInf><Ustrd>LN-2026-000003</Ustrd></RmtInf>
     <RtrInf><Rsn><Cd>AC04</Cd></Rsn><AddtlInf>Account closed</AddtlInf></RtrInf>
    </TxDtls></NtryDtls>
   </Ntry>
   <Ntry>
    <Amt Ccy="CNY">999.99</Amt><CdtDbtInd>CRDT</CdtDbtInd><Sts><Cd>BOOK</Cd></Sts>
    <BookgDt><Dt>2026-03-02</Dt></BookgDt><ValDt><Dt>2026-03-02</Dt></ValDt>
    <AcctSvcrRef>HB20260302000105</AcctSvcrRef>
    <BkTxCd><Prtry><Cd>CN-TRF-IN</Cd></Prtry></BkTxCd>
    <NtryDtls><TxDtls>
     <RltdPties><Dbtr><Pty><Nm>Unknown Payer</Nm></Pty></Dbtr></RltdPties>
     <RmtInf><Ustrd>payment for invoice 7781</Ustrd></RmtInf>
    </TxDtls></NtryDtls>
    <AddtlNtryInf>no reference we issued</AddtlNtryInf>
   </Ntry>
   <Ntry>
    <Amt Ccy="CNY">100.00</Amt><CdtDbtInd>CRDT</CdtDbtInd><Sts><Cd>PDNG</Cd></Sts>
    <ValDt><Dt>2026-03-03</Dt></ValDt>
    <BkTxCd><Domn><Cd>PMNT</Cd><Fmly><Cd>RCDT</Cd><SubFmlyCd>DMCT</SubFmlyCd></Fmly></Domn></BkTxCd>
   </Ntry>
  </Stmt>
 </BkToCstmrStmt>
</Document>
""".encode()

# A notification of a debit (one disbursement) and a credit (a repayment), same entry shape.
CAMT_054 = """<?xml version="1.0" encoding="UTF-8"?>
<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.054.001.08">
 <BkToCstmrDbtCdtNtfctn>
  <GrpHdr><MsgId>HBSC-NTF-000777</MsgId><CreDtTm>2026-03-02T10:15:00+08:00</CreDtTm></GrpHdr>
  <Ntfctn>
   <Id>NTF-000777</Id>
   <Acct><Id><Othr><Id>6222020200001234567</Id></Othr></Id><Ccy>CNY</Ccy></Acct>
   <Ntry>
    <Amt Ccy="CNY">80000.00</Amt><CdtDbtInd>DBIT</CdtDbtInd><Sts><Cd>BOOK</Cd></Sts>
    <BookgDt><Dt>2026-03-02</Dt></BookgDt><ValDt><Dt>2026-03-02</Dt></ValDt>
    <AcctSvcrRef>HB20260302000201</AcctSvcrRef>
    <BkTxCd><Domn><Cd>PMNT</Cd><Fmly><Cd>ICDT</Cd><SubFmlyCd>DMCT</SubFmlyCd></Fmly></Domn></BkTxCd>
    <NtryDtls><TxDtls>
     <Refs><InstrId>INS-1</InstrId><EndToEndId>DSB-000004</EndToEndId></Refs>
     <RltdPties><Cdtr><Pty><Nm>华东机械制造有限公司</Nm></Pty></Cdtr></RltdPties>
    </TxDtls></NtryDtls>
   </Ntry>
   <Ntry>
    <Amt Ccy="CNY">15000.00</Amt><CdtDbtInd>CRDT</CdtDbtInd><Sts><Cd>BOOK</Cd></Sts>
    <BookgDt><Dt>2026-03-02</Dt></BookgDt><ValDt><Dt>2026-03-02</Dt></ValDt>
    <AcctSvcrRef>HB20260302000202</AcctSvcrRef>
    <BkTxCd><Domn><Cd>PMNT</Cd><Fmly><Cd>RCDT</Cd><SubFmlyCd>DMCT</SubFmlyCd></Fmly></Domn></BkTxCd>
    <NtryDtls><TxDtls>
     <Amt Ccy="CNY">15000.00</Amt>
     <RltdPties><Dbtr><Pty><Nm>苏州恒达经销有限公司</Nm></Pty></Dbtr>
      <DbtrAcct><Id><Othr><Id>6217000010001112223</Id></Othr></Id></DbtrAcct></RltdPties>
     <RmtInf><Ustrd>LN-2026-000004</Ustrd></RmtInf>
    </TxDtls></NtryDtls>
   </Ntry>
  </Ntfctn>
 </BkToCstmrDbtCdtNtfctn>
</Document>
""".encode()

# A status report: the file partly accepted. Block 1: settled, rejected (AC04, with text),
# pending, rejected with a proprietary reason; block 2 accepted as a block (ACSP), its
# transaction reported without a status of its own.
PAIN_002 = b"""<?xml version="1.0" encoding="UTF-8"?>
<Document xmlns="urn:iso:std:iso:20022:tech:xsd:pain.002.001.10">
 <CstmrPmtStsRpt>
  <GrpHdr><MsgId>HBSC-STS-000123</MsgId><CreDtTm>2026-03-02T10:05:00+08:00</CreDtTm>
   <DbtrAgt><FinInstnId><BICFI>HBSCCNSHXXX</BICFI></FinInstnId></DbtrAgt></GrpHdr>
  <OrgnlGrpInfAndSts>
   <OrgnlMsgId>SCF-20260302-0001</OrgnlMsgId><OrgnlMsgNmId>pain.001.001.09</OrgnlMsgNmId>
   <OrgnlNbOfTxs>5</OrgnlNbOfTxs><OrgnlCtrlSum>91234.51</OrgnlCtrlSum><GrpSts>PART</GrpSts>
  </OrgnlGrpInfAndSts>
  <OrgnlPmtInfAndSts>
   <OrgnlPmtInfId>SCF-20260302-0001-00001</OrgnlPmtInfId>
   <TxInfAndSts><StsId>S-1</StsId><OrgnlEndToEndId>DSB-000001</OrgnlEndToEndId>
    <TxSts>ACSC</TxSts><AccptncDtTm>2026-03-02T10:01:00+08:00</AccptncDtTm></TxInfAndSts>
   <TxInfAndSts><StsId>S-2</StsId><OrgnlEndToEndId>DSB-000002</OrgnlEndToEndId>
    <TxSts>RJCT</TxSts>
    <StsRsnInf><Rsn><Cd>AC04</Cd></Rsn><AddtlInf>Creditor account closed</AddtlInf></StsRsnInf>
    <OrgnlTxRef><Amt><InstdAmt Ccy="CNY">1234.50</InstdAmt></Amt></OrgnlTxRef>
   </TxInfAndSts>
   <TxInfAndSts><OrgnlEndToEndId>DSB-000003</OrgnlEndToEndId><TxSts>PDNG</TxSts></TxInfAndSts>
   <TxInfAndSts><OrgnlEndToEndId>DSB-000005</OrgnlEndToEndId><TxSts>RJCT</TxSts>
    <StsRsnInf><Rsn><Prtry>HB-LIMIT</Prtry></Rsn><AddtlInf>Daily limit</AddtlInf>
     <AddtlInf>reached</AddtlInf></StsRsnInf>
   </TxInfAndSts>
  </OrgnlPmtInfAndSts>
  <OrgnlPmtInfAndSts>
   <OrgnlPmtInfId>SCF-20260302-0001-00002</OrgnlPmtInfId><PmtInfSts>ACSP</PmtInfSts>
   <TxInfAndSts><OrgnlEndToEndId>DSB-000004</OrgnlEndToEndId></TxInfAndSts>
  </OrgnlPmtInfAndSts>
 </CstmrPmtStsRpt>
</Document>
"""

# The whole file refused: no transaction statuses, a group reason.
PAIN_002_FILE_REJECTED = b"""<?xml version="1.0" encoding="UTF-8"?>
<Document xmlns="urn:iso:std:iso:20022:tech:xsd:pain.002.001.10">
 <CstmrPmtStsRpt>
  <GrpHdr><MsgId>HBSC-STS-000124</MsgId><CreDtTm>2026-03-02T10:06:00Z</CreDtTm></GrpHdr>
  <OrgnlGrpInfAndSts>
   <OrgnlMsgId>SCF-20260302-0002</OrgnlMsgId><OrgnlMsgNmId>pain.001.001.09</OrgnlMsgNmId>
   <GrpSts>RJCT</GrpSts><StsRsnInf><Rsn><Cd>FF01</Cd></Rsn></StsRsnInf>
  </OrgnlGrpInfAndSts>
 </CstmrPmtStsRpt>
</Document>
"""
